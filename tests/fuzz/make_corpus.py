#!/usr/bin/env python3
"""Writes the generated part of the fuzz seed corpora (tests/fuzz/corpus/).

The provider streams are built exactly as tests/fake_upstream/server.mjs
writes them; the rest are the formats' corners by hand. Rerun after changing
a wire format; it only (over)writes its own files, so inputs a fuzzer found
(crash-* files added as regressions) stay.
"""
import json
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
def put(name, fname, content):
    d = os.path.join(root, name); os.makedirs(d, exist_ok=True)
    if isinstance(content, str): content = content.encode('utf-8')
    open(os.path.join(d, fname), 'wb').write(content)
J = lambda o: json.dumps(o, separators=(',', ':'))

# ---- provider streams, exactly as tests/fake_upstream/server.mjs writes them
def ev(name, data): return f"event: {name}\ndata: {J(data)}\n\n"
words = ["Echo ", "of ", "1 ", "messages: ", "hi"]
def anthropic(behaviour='ok', model='claude-sonnet-4-6'):
    events = [ev('message_start', {'type':'message_start','message':{'id':'msg_fake','type':'message','role':'assistant','content':[],'model':model,'stop_reason':None,'stop_sequence':None,'usage':{'input_tokens':12,'output_tokens':1}}})]
    events.append(ev('content_block_start', {'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}))
    deltas = [ev('content_block_delta', {'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':w}}) for w in words]
    error = ev('error', {'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}})
    if behaviour == 'errorfirst': return ''.join(events + [error])
    if behaviour == 'midstream': return ''.join(events + deltas[:2] + [error])
    if behaviour == 'truncated': return ''.join(events + deltas[:2])
    if behaviour == 'ping':
        deltas = [x for d in deltas for x in (ev('ping', {'type':'ping'}), d)]
    events += deltas
    events.append(ev('content_block_stop', {'type':'content_block_stop','index':0}))
    events.append(ev('message_delta', {'type':'message_delta','delta':{'stop_reason':'end_turn','stop_sequence':None},'usage':{'output_tokens':len(words)}}))
    events.append(ev('message_stop', {'type':'message_stop'}))
    return ''.join(events)

def chunk(choices, usage=None, model='gpt-4o-mini'):
    return f"data: {J({'id':'chatcmpl-fake','object':'chat.completion.chunk','created':1700000000,'model':model,'system_fingerprint':None,'choices':choices,'usage':usage})}\n\n"
def openai(behaviour='ok'):
    events = [chunk([{'index':0,'delta':{'role':'assistant','content':''},'logprobs':None,'finish_reason':None}])]
    deltas = [chunk([{'index':0,'delta':{'content':w},'logprobs':None,'finish_reason':None}]) for w in words]
    error = f"data: {J({'error':{'message':'upstream overloaded','type':'server_error','code':503}})}\n\n"
    if behaviour == 'errorfirst': return ''.join(events + [error])
    if behaviour == 'midstream': return ''.join(events + deltas[:2] + [error])
    if behaviour == 'truncated': return ''.join(events + deltas[:2])
    if behaviour == 'vllm':
        return ''.join([': OPENROUTER PROCESSING\n\n', f"data: {J({'id':'x','model':'m','choices':None})}\n\n"] +
                       [d if i % 2 else f": keep-alive\n\n{d}" for i, d in enumerate(deltas)] +
                       [f"data: {J({'id':'x','model':'m'})}\n\n", chunk([{'index':0,'delta':{},'finish_reason':'stop'}]),
                        chunk([], {'prompt_tokens':12,'completion_tokens':5,'total_tokens':17}), 'data: [DONE]\n\n'])
    events += deltas
    events.append(chunk([{'index':0,'delta':{},'logprobs':None,'finish_reason':'stop'}]))
    events.append(chunk([], {'prompt_tokens':12,'completion_tokens':5,'total_tokens':17}))
    events.append('data: [DONE]\n\n')
    return ''.join(events)

for b in ['ok', 'errorfirst', 'midstream', 'truncated', 'ping']:
    put('anthropic_response', f'stream_{b}', anthropic(b))
put('anthropic_response', 'stream_crlf', anthropic().replace('\n', '\r\n'))
put('anthropic_response', 'stream_cache_usage', ev('message_start', {'type':'message_start','message':{'model':'claude-haiku-4-5','usage':{'input_tokens':3,'cache_read_input_tokens':100,'cache_creation_input_tokens':20,'output_tokens':1}}}) +
    ev('content_block_delta', {'type':'content_block_delta','index':0,'delta':{'type':'thinking_delta','thinking':'hmm'}}) +
    ev('content_block_delta', {'type':'content_block_delta','index':1,'delta':{'type':'text_delta','text':'Hi'}}) +
    ev('message_delta', {'type':'message_delta','delta':{'stop_reason':'max_tokens'},'usage':{'input_tokens':3,'output_tokens':9}}) +
    ev('message_stop', {'type':'message_stop'}))
put('anthropic_response', 'whole_body', J({'id':'msg_1','type':'message','role':'assistant','model':'claude-sonnet-4-6','content':[{'type':'text','text':'Hello'},{'type':'text','text':' there'}],'stop_reason':'end_turn','stop_sequence':None,'usage':{'input_tokens':10,'output_tokens':2}}))
put('anthropic_response', 'whole_error', J({'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}))
put('anthropic_response', 'event_name_only', 'event: message_stop\ndata: {}\n\n')
put('anthropic_response', 'not_json', 'event: content_block_delta\ndata: {"type":\n\n')

for b in ['ok', 'errorfirst', 'midstream', 'truncated', 'vllm']:
    put('openai_response', f'stream_{b}', openai(b))
put('openai_response', 'stream_crlf', openai().replace('\n', '\r\n'))
put('openai_response', 'stream_error_string_code', f"data: {J({'error':{'message':'Rate limit reached','type':'requests','code':'rate_limit_exceeded'}})}\n\n")
put('openai_response', 'stream_error_text', f"data: {J({'error':'model is loading'})}\n\n")
put('openai_response', 'stream_no_done', openai().replace('data: [DONE]\n\n', ''))
put('openai_response', 'done_only', 'data: [DONE]\n\n')
put('openai_response', 'whole_body', J({'id':'chatcmpl-1','object':'chat.completion','created':1700000000,'model':'gpt-4o-mini','choices':[{'index':0,'message':{'role':'assistant','content':'Hello!'},'finish_reason':'stop'}],'usage':{'prompt_tokens':9,'completion_tokens':3,'total_tokens':12}}))
put('openai_response', 'whole_error', J({'error':{'message':'The model `x` does not exist','type':'invalid_request_error','param':None,'code':'model_not_found'}}))
put('openai_response', 'whole_length', J({'model':'llama3','choices':[{'message':{'content':'cut'},'finish_reason':'length'}],'usage':None}))

# ---- SSE parser: the provider streams plus the format's corners
put('sse_parser', 'anthropic', anthropic())
put('sse_parser', 'anthropic_ping', anthropic('ping'))
put('sse_parser', 'openai', openai())
put('sse_parser', 'openai_vllm', openai('vllm'))
put('sse_parser', 'crlf', openai().replace('\n', '\r\n'))
put('sse_parser', 'cr_only', anthropic().replace('\n', '\r'))
put('sse_parser', 'bom', '\ufeff' + 'data: first\n\n')
put('sse_parser', 'multiline_data', 'event: note\ndata: line one\ndata: line two\ndata\ndata:\n\n')
put('sse_parser', 'ids', 'id: 1\ndata: a\n\nid\ndata: b\n\nid: x\x00y\ndata: c\n\n')
put('sse_parser', 'retry_and_unknown', 'retry: 1000\nfoo: bar\n: comment\ndata:no space\n\n')
put('sse_parser', 'no_data', 'event: ping\n\nevent: x\n\n')
put('sse_parser', 'unterminated', 'data: half an event')
put('sse_parser', 'mixed_endings', 'data: a\r\n\rdata: b\n\r\ndata: c\r\r')

# ---- provider error bodies (and retry-after values)
at = {400:'invalid_request_error',401:'authentication_error',403:'permission_error',404:'not_found_error',413:'request_too_large',429:'rate_limit_error',500:'api_error',529:'overloaded_error'}
for code, t in at.items():
    put('provider_error', f'anthropic_{code}', J({'type':'error','error':{'type':t,'message':f'fake {t}'}}))
for code in [400, 401, 404, 429, 500, 503]:
    typ = 'invalid_request_error' if code in (400, 401, 404) else 'requests' if code == 429 else 'server_error'
    ec = 'invalid_api_key' if code == 401 else 'rate_limit_exceeded' if code == 429 else 'model_not_found' if code == 404 else None
    msg = 'Incorrect API key provided: sk-***' if code == 401 else f'fake error {code}'
    put('provider_error', f'openai_{code}', J({'error':{'message':msg,'type':typ,'param':None,'code':ec}}))
put('provider_error', 'openrouter_int_code', J({'error':{'message':'Provider returned error','code':502}}))
put('provider_error', 'local_string_error', J({'error':'model "llama9" not found, try pulling it first'}))
put('provider_error', 'html', '<html><body><h1>502 Bad Gateway</h1></body></html>\n')
put('provider_error', 'retry_after_seconds', '30')
put('provider_error', 'retry_after_ms', '1500.5')
put('provider_error', 'retry_after_date', 'Wed, 21 Oct 2015 07:28:00 GMT')
put('provider_error', 'empty_object', '{}')

# ---- path templates: "TEMPLATE\nPATH\nQUERY"
pt = [
 ('/v1/status', '/v1/status', ''), ('/', '/', ''),
 ('/v1/chat', '/v1/chat', ''), ('/v1/chat:stream', '/v1/chat:stream', ''),
 ('/v1/sessions/{session_id}/history', '/v1/sessions/abc/history', ''),
 ('/v1/sessions/{session_id}/history', '/v1/sessions/a%2Fb%20c/history', ''),
 ('/v1/sessions/{session_id}', '/v1/sessions/user:42', ''),
 ('/v1/sessions/{session_id}:reset', '/v1/sessions/s1:reset', ''),
 ('/v1/sessions/{session_id}:reset', '/v1/sessions/a:b:reset', ''),
 ('/history/{session_id}', '/history/', ''),
 ('/v1/sessions', '/v1/sessions', 'page_size=10&page_token=abc%3D%3D'),
 ('/sessions', '/sessions', 'a=1&b=x+y&c&=d&e=%zz&f=%4'),
 ('/v1/{name=**}', '/v1/a/b/c', ''), ('/v1/{name=*}/x', '/v1/y/x', ''),
 ('/v1/*/items/**', '/v1/s/items/1/2', ''), ('/v1/{a.b}/{c}', '/v1/1/2', ''),
 ('/v1/{x=**}:verb', '/v1/p/q:verb', ''),
 ('/v1//x', '/v1//x', ''), ('/v1/{x', '/v1/y', ''), ('/v1/{x=a/b}', '/v1/a/b', ''),
 ('/v1/**/x', '/v1/a/x', ''), ('v1/no/slash', 'v1/no/slash', ''),
]
for i, (t, p, q) in enumerate(pt):
    put('path_template', f'case_{i:02d}', f'{t}\n{p}\n{q}')

# ---- transcoder: "METHOD PATH[?QUERY]\nBODY"
tr = [
 ('GET /v1/status', ''), ('GET /', ''),
 ('POST /v1/chat', J({'message':'hi','session_id':'s1'})),
 ('POST /v1/chat', J({'message':'hi','sessionId':'s1','systemPrompt':'be brief','model':'m','maxTokens':64,'temperature':0.7})),
 ('POST /chat', J({'message':'hi','session_id':'s1','system_prompt':None,'unknown':{'a':[1,{'b':None}]}})),
 ('POST /v1/chat:stream', J({'message':'hello','session_id':'stream-1','max_tokens':5})),
 ('POST /chat-stream', J({'message':'x','session_id':'y','temperature':'NaN'})),
 ('GET /v1/sessions/s1/history', ''), ('GET /history/a%20b', ''),
 ('DELETE /v1/sessions/s1', ''), ('DELETE /history/s1', ''),
 ('POST /v1/sessions/s1:reset', ''), ('POST /reset/s1', '{}'),
 ('GET /v1/sessions?page_size=2&page_token=t', ''), ('GET /sessions?pageSize=3', ''),
 ('GET /v1/stats', ''), ('GET /stats', ''),
 ('GET /v1/sessions/a%FFb/history', ''),
 ('POST /v1/chat', '{"message": "hi",}'), ('POST /v1/chat', '[1,2]'),
 ('POST /v1/chat', J({'message':5})), ('POST /v1/chat', J({'max_tokens':'12'})),
 ('POST /v1/chat', J({'max_tokens':1e20})),
 # Bodies read as responses (the route's output type).
 ('GET /v1/stats', J({'total_sessions':'9007199254740993','total_messages':4,'avg_messages_per_session':2.5,'total_input_tokens':10,'total_output_tokens':20})),
 ('GET /v1/sessions/s1/history', J({'session_id':'s1','messages':[{'role':'user','content':'hi','timestamp':'2024-01-01T00:00:00Z'}],'turn_count':1,'system_prompt':'','created_at':'2024-01-01T00:00:00Z'})),
 ('POST /v1/chat:stream', J({'delta':{'text':'Hel'}})),
 ('POST /v1/chat:stream', J({'done':{'response':'Hello','session_id':'s','turn_count':1,'usage':{'input_tokens':1,'output_tokens':2}}})),
 ('GET /v1/sessions', J({'sessions':[{'session_id':'a','turns':2,'created_at':'x','updated_at':'y'}],'next_page_token':'n'})),
]
for i, (h, b) in enumerate(tr):
    put('transcoder', f'case_{i:02d}', f'{h}\n{b}')

# ---- .env files
put('dotenv', 'basic', 'ANTHROPIC_API_KEY=sk-ant-xxx\nCHAT_PROVIDER=anthropic\nPORT=50051\n')
put('dotenv', 'comments', '# a comment\n\nexport OPENAI_API_KEY = sk-xxx   # trailing\nEMPTY=\nHASH=#notacomment\nURL=http://x/#frag\n')
put('dotenv', 'quotes', 'A="line\\nnext\\t\\"q\\" \\\\"  # c\nB=\'single $literal \\n\'\nC="unterminated\nD=\'\'\n')
put('dotenv', 'crlf', 'X=1\r\nY = two words \r\n\r\nexport  Z=3\r\n')
put('dotenv', 'invalid', 'no equals here\n=novalue\nBAD NAME=x\nok.name-1=v\n  INDENTED=yes\n')
put('dotenv', 'escapes_end', 'K="abc\\\nL="\\"\n')
