"""The official prompt templates (llama/utils.py format_prompt), exact strings."""

PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\n{instruction}\n\n### Response:")
PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "{instruction}\n\n### Input:\n{input}\n\n### Response:")


def format_prompt(template, instruction, inp=None):
    if template == "alpaca":
        return PROMPT_NO_INPUT.format(instruction=instruction)
    if template == "alpaca-input":
        return PROMPT_INPUT.format(instruction=instruction, input=inp if inp is not None else "")
    if template == "none":
        return instruction
    raise ValueError(f"unknown template {template!r}")
