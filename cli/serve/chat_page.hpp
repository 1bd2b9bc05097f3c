// The chat page `lav2 serve` answers GET / with: one static page, no external resources. It
// talks to the server's own /v1/chat/completions with stream: true (an image chosen in the page
// goes inline as a data: URL), shows the answer as it streams, and its Stop button aborts the
// request, which frees the server's slot (the server sees the connection close).
#pragma once

namespace lav2::cli::serve {

inline constexpr const char* kChatPage = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lav2 chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:46rem;margin:1.5rem auto;padding:0 1rem;color:#222}
#log div{white-space:pre-wrap;margin:.4rem 0;padding:.5rem .7rem;border-radius:.4rem}
.user{background:#e8f0fe}.assistant{background:#f4f4f4}.error{background:#fde8e8}
#preview{max-height:8rem;display:none;margin:.4rem 0}
form{display:flex;gap:.4rem;flex-wrap:wrap}#text{flex:1 1 20rem}
</style></head><body>
<h1>lav2 chat</h1>
<p><small>LLaMA-Adapter V2 on this machine's CPU. The released model was trained on single turns: later turns
see the earlier ones as context it has not learned to use.</small></p>
<div><input type="file" id="image" accept="image/png,image/jpeg"> <button id="clear" type="button">New chat</button>
<input id="key" type="password" placeholder="API key (if the server has one)"></div>
<img id="preview" alt="the chosen image">
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Ask about the image">
<button id="send">Send</button><button id="stop" type="button" disabled>Stop</button></form>
<script>
const $ = id => document.getElementById(id);
let messages = [], image = null, controller = null, model = null;
$('image').onchange = () => {
  const f = $('image').files[0]; if (!f) return;
  const r = new FileReader();
  // One image per conversation (the server takes one per request): a new image starts a new chat.
  r.onload = () => { image = r.result; $('preview').src = image; $('preview').style.display = 'block';
                     messages = []; $('log').textContent = ''; };
  r.readAsDataURL(f);
};
$('clear').onclick = () => { messages = []; $('log').textContent = ''; };
function add(cls, text) { const d = document.createElement('div'); d.className = cls; d.textContent = text;
  $('log').appendChild(d); return d; }
$('stop').onclick = () => { if (controller) controller.abort(); };
$('form').onsubmit = async e => {
  e.preventDefault();
  const text = $('text').value; if (!text && !image) return;
  $('text').value = '';
  const content = [{type: 'text', text}];
  if (image && messages.length === 0) content.push({type: 'image_url', image_url: {url: image}});
  messages.push({role: 'user', content});
  add('user', text);
  const out = add('assistant', '');
  out.id = 'answer';
  controller = new AbortController();
  $('send').disabled = true; $('stop').disabled = false;
  const headers = {'Content-Type': 'application/json'};
  if ($('key').value) headers.Authorization = 'Bearer ' + $('key').value;
  try {
    if (!model) {
      const m = await fetch('/v1/models', {headers});
      if (!m.ok) { const j = await m.json(); throw new Error(j.error ? j.error.message : m.statusText); }
      model = (await m.json()).data[0].id;
    }
    const res = await fetch('/v1/chat/completions', {method: 'POST', headers, signal: controller.signal,
      body: JSON.stringify({model, messages, stream: true})});
    if (!res.ok) { const j = await res.json(); throw new Error(j.error ? j.error.message : res.statusText); }
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const j = JSON.parse(line.slice(6));
        if (j.error) throw new Error(j.error.message);
        const d = j.choices && j.choices[0] && j.choices[0].delta;
        if (d && d.content) out.textContent += d.content;
      }
    }
    out.dataset.done = 'yes';
  } catch (err) {
    if (err.name === 'AbortError') { out.textContent += ' [stopped]'; out.dataset.done = 'stopped'; }
    else { out.className = 'error'; out.textContent = String(err.message || err); out.dataset.done = 'error'; }
  }
  out.id = '';
  messages.push({role: 'assistant', content: out.textContent});
  controller = null; $('send').disabled = false; $('stop').disabled = true;
};
</script></body></html>
)html";

}  // namespace lav2::cli::serve
