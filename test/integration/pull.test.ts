// Pulling through ferry, by plain HTTP, from a real docker-registry upstream:
// bytes, digests, headers and what the upstream was asked.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startFerry, oneUpstream, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, digestOf } from '../helpers/images.ts'
import { eventually } from '../helpers/procs.ts'
import type { Registry } from '../helpers/registry.ts'
import { SBOM_TYPE, SIG_TYPE, startSeededFerry, type Seeded } from '../helpers/seed.ts'

const ALL = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ')

let upstream: Registry
let ferry: Ferry
let seeded: Seeded
let stop: (() => Promise<void>) | undefined

t.before(async () => { ({ upstream, ferry, seeded, stop } = await startSeededFerry()) })
t.teardown(() => stop?.())

t.test('GET /v2/ answers 200 with the API version header', async t => {
  const a = await get(`${ferry.url}/v2/`)
  t.equal(a.status, 200)
  t.equal(a.header('docker-distribution-api-version'), 'registry/2.0')
})

t.test('a manifest by tag is served byte for byte with the upstream media type and digest headers', async t => {
  const a = await get(`${ferry.url}/v2/test/oci/manifests/v1`, { accept: ALL })
  t.equal(a.status, 200)
  t.same(a.body, seeded.oci.manifest.bytes, 'identical bytes, not re-encoded JSON')
  t.equal(a.header('content-type'), OCI_MANIFEST)
  t.equal(a.header('docker-content-digest'), seeded.oci.manifest.digest)
  t.equal(a.header('content-length'), String(seeded.oci.manifest.bytes.length))
  t.equal(a.header('etag'), `"${seeded.oci.manifest.digest}"`)
  const d = await get(`${ferry.url}/v2/test/docker/manifests/v1`, { accept: ALL })
  t.equal(d.header('content-type'), DOCKER_MANIFEST)
  t.same(d.body, seeded.docker.manifest.bytes)
})

t.test('HEAD of a manifest gives the headers and no body', async t => {
  const a = await get(`${ferry.url}/v2/test/docker/manifests/v1`, { accept: ALL }, 'HEAD')
  t.equal(a.status, 200)
  t.equal(a.body.length, 0)
  t.equal(a.header('docker-content-digest'), seeded.docker.manifest.digest)
  t.equal(a.header('content-length'), String(seeded.docker.manifest.bytes.length))
})

t.test('a manifest by digest is served and then cached: the upstream is asked once', async t => {
  const path = `/v2/test/multi/manifests/${seeded.arm64.manifest.digest}`
  for (let i = 0; i < 3; i++) {
    const a = await get(ferry.url + path, { accept: OCI_MANIFEST })
    t.equal(a.status, 200)
    t.same(a.body, seeded.arm64.manifest.bytes)
  }
  t.equal(upstream.count('GET', `/v2/test/multi/manifests/${seeded.arm64.manifest.digest}`), 1)
})

t.test('Accept decides what a tag resolves to, and the cache never serves a type the client did not accept', async t => {
  const idx = await get(`${ferry.url}/v2/test/multi/manifests/v1`, { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` })
  t.equal(idx.status, 200)
  t.equal(idx.header('content-type'), OCI_INDEX)
  t.same(idx.body, seeded.multi.bytes)
  // a client that accepts only single-platform manifests: distribution 2.8 answers 404 for an index it cannot give
  const only = await get(`${ferry.url}/v2/test/multi/manifests/v1`, { accept: OCI_MANIFEST })
  t.not(only.header('content-type'), OCI_INDEX, 'never the cached index')
  t.equal(only.status, 404)
  t.equal(ociError(only)?.code, 'MANIFEST_UNKNOWN')
  // the same Accept set in another order is the same cache entry: no new upstream request
  const before = upstream.count('GET', '/v2/test/multi/manifests/v1')
  const again = await get(`${ferry.url}/v2/test/multi/manifests/v1`, { accept: `${OCI_MANIFEST},${OCI_INDEX}` })
  t.equal(again.header('content-type'), OCI_INDEX)
  t.equal(upstream.count('GET', '/v2/test/multi/manifests/v1'), before)
})

t.test('blobs: GET, HEAD and Range from upstream and from the cache', async t => {
  const layer = seeded.oci.layers[0]!
  const path = `/v2/test/oci/blobs/${layer.digest}`
  const head = await get(ferry.url + path, {}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.header('content-length'), String(layer.bytes.length))
  t.equal(head.header('docker-content-digest'), layer.digest)
  t.equal(upstream.count('GET', path), 0, 'HEAD does not fetch the blob')

  const a = await get(ferry.url + path)
  t.equal(a.status, 200)
  t.equal(digestOf(a.body), layer.digest)
  t.equal(a.header('content-length'), String(layer.bytes.length))
  const b = await get(ferry.url + path)
  t.equal(digestOf(b.body), layer.digest)
  t.equal(upstream.count('GET', path), 1, 'second GET served from cache')

  const r = await get(ferry.url + path, { range: 'bytes=10-19' })
  t.equal(r.status, 206)
  t.same(r.body, layer.bytes.subarray(10, 20))
  t.equal(r.header('content-range'), `bytes 10-19/${layer.bytes.length}`)
  const suffix = await get(ferry.url + path, { range: 'bytes=-5' })
  t.same(suffix.body, layer.bytes.subarray(layer.bytes.length - 5))
  const open = await get(ferry.url + path, { range: `bytes=${layer.bytes.length - 3}-` })
  t.same(open.body, layer.bytes.subarray(layer.bytes.length - 3))
  const bad = await get(ferry.url + path, { range: `bytes=${layer.bytes.length}-${layer.bytes.length + 10}` })
  t.equal(bad.status, 416)
  t.equal(ociError(bad)?.code, 'RANGE_INVALID')
  t.equal(bad.header('content-range'), `bytes */${layer.bytes.length}`)
})

t.test('a Range on an uncached blob is answered from the fill', async t => {
  const layer = seeded.docker.layers[1]!
  const r = await get(`${ferry.url}/v2/test/docker/blobs/${layer.digest}`, { range: 'bytes=0-99' })
  t.equal(r.status, 206)
  t.same(r.body, layer.bytes.subarray(0, 100))
  const whole = await get(`${ferry.url}/v2/test/docker/blobs/${layer.digest}`)
  t.equal(digestOf(whole.body), layer.digest)
  t.equal(upstream.count('GET', `/blobs/${layer.digest}`), 1)
})

t.test('manifest references are not fetched until asked for', async t => {
  const fresh = await startFerry({ config: oneUpstream(upstream.url) })
  t.teardown(() => fresh.stop())
  const before = upstream.requests().length
  await get(`${fresh.url}/v2/test/docker/manifests/v1`, { accept: ALL })
  const asked = upstream.requests().slice(before)
  t.equal(asked.filter(r => r.path.includes('/blobs/')).length, 0)
  t.equal(asked.filter(r => r.path.includes('/manifests/v1')).length, 1)
})

t.test('tags list with n/last pagination and a Link to the next page', async t => {
  const all = await get(`${ferry.url}/v2/test/oci/tags/list`)
  t.equal(all.status, 200)
  const tags = all.json<{ name: string, tags: string[] }>().tags
  t.ok(tags.includes('v1'))
  const page = await get(`${ferry.url}/v2/test/oci/tags/list?n=1`)
  t.equal(page.json<{ tags: string[] }>().tags.length, 1)
  const link = page.header('link')
  t.match(link, /^<\/v2\/test\/oci\/tags\/list\?.*last=.*>; rel="next"$/)
  const pages = [page.json<{ tags: string[] }>().tags]
  let nextLink = link
  while (nextLink !== undefined && pages.length < 10) {
    const next = await get(ferry.url + /<([^>]+)>/.exec(nextLink)![1])
    t.equal(next.status, 200)
    pages.push(next.json<{ tags: string[] }>().tags)
    nextLink = next.header('link')
  }
  t.same(pages.flat(), [...tags].sort(), 'the pages together are the whole sorted list')
  const bad = await get(`${ferry.url}/v2/test/oci/tags/list?n=abc`)
  t.equal(bad.status, 400)
  t.equal(ociError(bad)?.code, 'PAGINATION_NUMBER_INVALID')
  const unknown = await get(`${ferry.url}/v2/test/nothing-here/tags/list`)
  t.equal(unknown.status, 404)
  t.equal(ociError(unknown)?.code, 'NAME_UNKNOWN')
})

t.test('referrers are served, from the referrers tag when the upstream lacks the API, filtered by artifactType', async t => {
  const a = await get(`${ferry.url}/v2/test/oci/referrers/${seeded.oci.manifest.digest}`)
  t.equal(a.status, 200)
  t.equal(a.header('content-type'), OCI_INDEX)
  const digests = a.json<{ manifests: { digest: string }[] }>().manifests.map(m => m.digest).sort()
  t.same(digests, [seeded.sbom.manifest.digest, seeded.sig.manifest.digest].sort())
  const f = await get(`${ferry.url}/v2/test/oci/referrers/${seeded.oci.manifest.digest}?artifactType=${encodeURIComponent(SBOM_TYPE)}`)
  t.same(f.json<{ manifests: { digest: string, artifactType: string }[] }>().manifests.map(m => [m.digest, m.artifactType]), [[seeded.sbom.manifest.digest, SBOM_TYPE]])
  t.equal(f.header('oci-filters-applied'), 'artifactType')
  const s = await get(`${ferry.url}/v2/test/oci/referrers/${seeded.oci.manifest.digest}?artifactType=${encodeURIComponent(SIG_TYPE)}`)
  t.equal(s.json<{ manifests: unknown[] }>().manifests.length, 1)
  const none = await get(`${ferry.url}/v2/test/docker/referrers/${seeded.docker.manifest.digest}`)
  t.equal(none.status, 200)
  t.same(none.json<{ manifests: unknown[] }>().manifests, [])
})

t.test('push and delete get 405 UNSUPPORTED, and ferry keeps serving', async t => {
  const before = upstream.requests().length
  for (const [method, path] of [
    ['POST', '/v2/test/oci/blobs/uploads/'],
    ['PUT', '/v2/test/oci/manifests/v2'],
    ['PATCH', '/v2/test/oci/blobs/uploads/abc'],
    ['DELETE', `/v2/test/oci/manifests/${seeded.oci.manifest.digest}`],
    ['DELETE', `/v2/test/oci/blobs/${seeded.oci.config.digest}`],
  ] as const) {
    const a = await get(ferry.url + path, {}, method)
    t.equal(a.status, 405, `${method} ${path}`)
    t.equal(ociError(a)?.code, 'UNSUPPORTED')
  }
  t.same(upstream.requests().slice(before), [], 'nothing was forwarded')
  t.equal((await get(`${ferry.url}/v2/`)).status, 200)
})

t.test('unknown tags, manifests and blobs get their OCI codes', async t => {
  const tag = await get(`${ferry.url}/v2/test/oci/manifests/nope`, { accept: ALL })
  t.equal(tag.status, 404)
  t.equal(ociError(tag)?.code, 'MANIFEST_UNKNOWN')
  const missing = digestOf('not there')
  const m = await get(`${ferry.url}/v2/test/oci/manifests/${missing}`)
  t.equal(m.status, 404)
  t.equal(ociError(m)?.code, 'MANIFEST_UNKNOWN')
  const b = await get(`${ferry.url}/v2/test/oci/blobs/${missing}`)
  t.equal(b.status, 404)
  t.equal(ociError(b)?.code, 'BLOB_UNKNOWN')
  const bh = await get(`${ferry.url}/v2/test/oci/blobs/${missing}`, {}, 'HEAD')
  t.equal(bh.status, 404)
})

t.test('metrics are exposed in Prometheus format', async t => {
  // a blob hit that cannot race the commit of the blob's fill (a request during the commit joins the fill instead)
  const layer = seeded.oci.layers[0]!
  const hex = layer.digest.slice('sha256:'.length)
  t.ok(await eventually(() => existsSync(join(ferry.data, 'blobs', 'sha256', hex.slice(0, 2), hex))), 'the layer is in the store')
  t.equal(digestOf((await get(`${ferry.url}/v2/test/oci/blobs/${layer.digest}`)).body), layer.digest)
  const a = await get(`${ferry.url}/metrics`)
  t.equal(a.status, 200)
  t.match(a.body.toString(), /ferry_cache_lookups_total\{kind="blob",result="hit"\} \d+/)
  t.match(a.body.toString(), /ferry_http_request_duration_seconds_count\{route="manifest",method="GET",status="200"\} \d+/)
})
