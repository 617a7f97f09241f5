// GET /openapi.json is a valid OpenAPI 3 document (checked by
// @apidevtools/swagger-parser, a standard validator) describing every route.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startStack } from './harness.mjs';

describe('openapi.json', () => {
  let stack;
  before(async () => { stack = await startStack(); });
  after(async () => { await stack?.stop(); });

  it('validates and lists every route with schemas', async () => {
    const res = await fetch(stack.base + '/openapi.json');
    assert.equal(res.status, 200);
    const doc = await res.json();
    assert.match(doc.openapi, /^3\./);
    await SwaggerParser.validate(structuredClone(doc));
    const expected = {
      '/': 'get', '/v1/status': 'get', '/chat': 'post', '/v1/chat': 'post',
      '/chat-stream': 'post', '/v1/chat:stream': 'post',
      '/history/{session_id}': 'delete', '/v1/sessions/{session_id}/history': 'get',
      '/v1/sessions/{session_id}': 'delete', '/reset/{session_id}': 'post',
      '/v1/sessions/{session_id}:reset': 'post', '/sessions': 'get', '/v1/sessions': 'get',
      '/stats': 'get', '/v1/stats': 'get',
      '/v1/admin/keys': 'post', '/v1/admin/keys/{key_id}:revoke': 'post',
      '/v1/admin/usage': 'get',
    };
    for (const [path, method] of Object.entries(expected)) {
      assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
    }
    assert.ok(doc.paths['/history/{session_id}'].get);
    const stats = doc.components.schemas['chat.v1.GetStatsResponse'];
    assert.equal(stats.properties.total_sessions.type, 'integer');
    assert.equal(stats.properties.avg_messages_per_session.type, 'number');
    const params = doc.paths['/v1/sessions'].get.parameters.map((p) => p.name);
    assert.deepEqual(params.sort(), ['page_size', 'page_token']);
    assert.deepEqual(doc.components.schemas.Error.required, ['code', 'message', 'details']);
    assert.ok(doc.paths['/v1/chat:stream'].post.responses['200'].content['text/event-stream']);
    assert.ok(doc.paths['/v1/admin/keys'].get);
  });

  it('documents the API key schemes where a key is needed', async () => {
    const doc = await (await fetch(stack.base + '/openapi.json')).json();
    assert.deepEqual(doc.components.securitySchemes.bearerAuth,
      { ...doc.components.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer' });
    assert.equal(doc.components.securitySchemes.apiKeyHeader.name, 'x-api-key');
    const both = [{ bearerAuth: [] }, { apiKeyHeader: [] }];
    for (const [path, method] of [['/chat', 'post'], ['/v1/chat', 'post'],
      ['/history/{session_id}', 'get'], ['/v1/admin/keys', 'post'], ['/v1/admin/usage', 'get']]) {
      assert.deepEqual(doc.paths[path][method].security, both, `${method} ${path}`);
      assert.ok(doc.paths[path][method].responses['401'], `${method} ${path}`);
    }
    assert.equal(doc.paths['/'].get.security, undefined);
    assert.equal(doc.paths['/v1/status'].get.security, undefined);
  });
});
