// Bad input gets its OCI error code, never reaches the upstream, and the
// process keeps serving.
import t from 'tap'
import { startFerry, oneUpstream } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { digestOf, image, pushImage } from '../helpers/images.ts'
import { startRegistry } from '../helpers/registry.ts'
import { request } from 'undici'
import { connect } from 'node:net'

t.test('a table of bad requests', async t => {
  const upstream = await startRegistry()
  const img = await image()
  await pushImage(upstream.url, 'good/repo', 'v1', img)
  const ferry = await startFerry({ config: oneUpstream(upstream.url) })
  t.teardown(async () => { await ferry.stop(); await upstream.stop() })
  const before = upstream.requests().length
  const hex = 'a'.repeat(64)

  const table: [string, string, number, string, Record<string, string>?][] = [
    ['uppercase name', '/v2/Good/Repo/manifests/v1', 400, 'NAME_INVALID'],
    ['dot-dot component', '/v2/good/../repo/manifests/v1', 400, 'NAME_INVALID'],
    ['dot-dot name', '/v2/../manifests/v1', 400, 'NAME_INVALID'],
    ['encoded slash', '/v2/good%2frepo/manifests/v1', 400, 'NAME_INVALID'],
    ['over-long name', `/v2/${'a/'.repeat(130)}b/manifests/v1`, 400, 'NAME_INVALID'],
    ['empty component', '/v2/good//repo/manifests/v1', 400, 'NAME_INVALID'],
    // a reference that is neither a tag nor a digest names nothing to read: 404, as clients and the conformance suite expect
    ['bad tag', '/v2/good/repo/manifests/-v1', 404, 'MANIFEST_UNKNOWN'],
    ['over-long tag', `/v2/good/repo/manifests/${'t'.repeat(129)}`, 404, 'MANIFEST_UNKNOWN'],
    ['md5 digest', `/v2/good/repo/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
    ['short digest', `/v2/good/repo/blobs/sha256:${'a'.repeat(63)}`, 400, 'DIGEST_INVALID'],
    ['uppercase hex', `/v2/good/repo/blobs/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['non-hex digest', `/v2/good/repo/blobs/sha256:${'z'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['no algorithm', `/v2/good/repo/blobs/${hex}`, 400, 'DIGEST_INVALID'],
    ['bad manifest digest', '/v2/good/repo/manifests/sha256:abc', 404, 'MANIFEST_UNKNOWN'],
    ['bad referrers digest', '/v2/good/repo/referrers/sha1:abc', 400, 'DIGEST_INVALID'],
    ['bad last', '/v2/good/repo/tags/list?last=-x', 400, 'TAG_INVALID'],
    ['unknown tag', '/v2/good/repo/manifests/nope', 404, 'MANIFEST_UNKNOWN'],
    ['unknown digest', `/v2/good/repo/manifests/sha256:${hex}`, 404, 'MANIFEST_UNKNOWN'],
    ['unknown blob', `/v2/good/repo/blobs/sha256:${hex}`, 404, 'BLOB_UNKNOWN'],
    ['unknown repository', '/v2/no/such/repo/tags/list', 404, 'NAME_UNKNOWN'],
    ['unknown endpoint', '/v2/good/repo/whatever', 404, 'UNSUPPORTED'],
    ['catalog page size', '/v2/_catalog?n=lots', 400, 'PAGINATION_NUMBER_INVALID'],
    ['inverted range', `/v2/good/repo/blobs/${img.layers[0]!.digest}`, 416, 'RANGE_INVALID', { range: 'bytes=9-2' }],
    ['range past the end', `/v2/good/repo/blobs/${img.layers[0]!.digest}`, 416, 'RANGE_INVALID', { range: 'bytes=999999-' }],
  ]
  for (const [what, path, status, code, headers] of table) {
    const a = await get(ferry.url + path, { accept: img.manifest.mediaType, ...headers })
    t.equal(a.status, status, `${what}: status`)
    t.equal(ociError(a)?.code, code, `${what}: code`)
    t.match(a.header('content-type'), /^application\/json/, `${what}: JSON body`)
  }
  const asked = upstream.requests().slice(before).map(r => r.path)
  t.notOk(asked.some(p => /Good|\.\.|%2f|md5|sha256:abc|-v1|zzzz/.test(p)), 'malformed requests never reach the upstream')

  // a raw request line no HTTP parser accepts
  await new Promise<void>(resolve => {
    const s = connect(ferry.port, '127.0.0.1', () => s.end('GARBAGE\r\n\r\n'))
    s.on('data', () => {}); s.on('close', () => resolve()); s.on('error', () => resolve())
  })
  // a client that goes away in the middle of a response
  const aborted = new AbortController()
  const pending = request(`${ferry.url}/v2/good/repo/blobs/${img.layers[0]!.digest}`, { signal: aborted.signal }).catch(() => undefined)
  aborted.abort()
  await pending

  const ok = await get(`${ferry.url}/v2/good/repo/blobs/${img.layers[0]!.digest}`)
  t.equal(ok.status, 200, 'still serving after all of it')
  t.equal(digestOf(ok.body), img.layers[0]!.digest)
  t.equal(ferry.proc.child.exitCode, null, 'the process is alive')
})
