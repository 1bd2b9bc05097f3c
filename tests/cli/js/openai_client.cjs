// The official OpenAI client (npm `openai`, major 5) against `lav2 serve`, for
// tests/cli/test_serve_openai_client.cpp:
//   node openai_client.cjs PACKAGE_DIR BASE_URL API_KEY IMAGE_FILE
// Prints one JSON object: the non-streaming answer with its usage, the streamed text, and the
// status and param of a malformed request's error.
const fs = require('fs');
const [pkg, baseURL, apiKey, imageFile] = process.argv.slice(2);
const OpenAI = require(pkg);

async function main() {
  const client = new OpenAI({baseURL, apiKey, maxRetries: 0});
  const url = 'data:image/png;base64,' + fs.readFileSync(imageFile).toString('base64');
  const messages = [{role: 'user', content: [{type: 'text', text: 'What is in the image?'},
                                             {type: 'image_url', image_url: {url}}]}];
  const plain = await client.chat.completions.create({model: 'lav2', messages, max_tokens: 12, temperature: 0});
  const stream = await client.chat.completions.create(
      {model: 'lav2', messages, max_tokens: 12, temperature: 0, stream: true, stream_options: {include_usage: true}});
  let streamed = '', chunks = 0, finish = null, streamUsage = null;
  for await (const chunk of stream) {
    ++chunks;
    if (chunk.usage) streamUsage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta && choice.delta.content) streamed += choice.delta.content;
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  let error = null;
  try {
    await client.chat.completions.create({model: 'lav2', messages: [{role: 'user', content: 5}]});
  } catch (e) {
    error = {status: e.status, param: e.param, type: e.type};
  }
  const models = await client.models.list();
  console.log(JSON.stringify({
    text: plain.choices[0].message.content, finish: plain.choices[0].finish_reason, usage: plain.usage,
    streamed, chunks, stream_finish: finish, stream_usage: streamUsage, error,
    models: models.data.map(m => m.id)}));
}
main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
