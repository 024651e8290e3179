// Tags move; manifests by digest and blobs do not. Within tagTTL a pull by
// tag asks the upstream nothing; after it, one HEAD; when the upstream is
// down or rate-limits, cached content is still served.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startFerry } from '../helpers/ferry.ts'
import { startFaulty } from '../helpers/faulty.ts'
import { get, ociError } from '../helpers/http.ts'
import { digestOf, image, pushImage, pushManifest } from '../helpers/images.ts'
import { startRegistry } from '../helpers/registry.ts'

const TTL_MS = 1500

t.test('tag TTL, revalidation, moved tags, and serving through an upstream outage', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const v1 = await image({ files: { 'v.txt': 'one' } })
  const v2 = await image({ files: { 'v.txt': 'two' } })
  await pushImage(upstream.url, 'app/web', 'stable', v1)
  await pushImage(upstream.url, 'app/web', undefined, v2)
  const ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true, tagTTL: `${TTL_MS}ms`, staleIfError: '1h', timeouts: { connect: '1s', headers: '2s' } }] } })
  t.teardown(() => ferry.stop())
  const accept = { accept: v1.manifest.mediaType }
  const pullTag = async (): Promise<string | undefined> => {
    const a = await get(`${ferry.url}/v2/app/web/manifests/stable`, accept)
    t.equal(a.status, 200)
    return a.header('docker-content-digest')
  }

  t.equal(await pullTag(), v1.manifest.digest)
  const afterFirst = upstream.requests().length
  for (let i = 0; i < 5; i++) t.equal(await pullTag(), v1.manifest.digest)
  t.equal(upstream.requests().length, afterFirst, 'within the TTL the upstream sees no request at all')

  // the tag moves upstream; within the TTL ferry still serves the old digest
  await pushManifest(upstream.url, 'app/web', 'stable', v2.manifest)
  t.equal(await pullTag(), v1.manifest.digest)
  await sleep(TTL_MS + 200)
  const beforeRevalidate = upstream.requests().length
  t.equal(await pullTag(), v2.manifest.digest, 'after the TTL the new digest is served')
  const asked = upstream.requests().slice(beforeRevalidate).map(r => `${r.method} ${r.path}`)
  t.same(asked, ['HEAD /v2/app/web/manifests/stable', 'GET /v2/app/web/manifests/stable'], 'one HEAD, then one GET because it moved')

  // unchanged after the TTL: one HEAD, no GET
  await sleep(TTL_MS + 200)
  const beforeSame = upstream.requests().length
  t.equal(await pullTag(), v2.manifest.digest)
  t.same(upstream.requests().slice(beforeSame).map(r => r.method), ['HEAD'])

  // cache a blob, then take the upstream away
  const layer = v2.layers[0]!
  t.equal(digestOf((await get(`${ferry.url}/v2/app/web/blobs/${layer.digest}`)).body), layer.digest)
  await get(`${ferry.url}/v2/app/web/tags/list`)
  await upstream.stop()
  await sleep(TTL_MS + 200)

  const stale = await get(`${ferry.url}/v2/app/web/manifests/stable`, accept)
  t.equal(stale.status, 200, 'a cached tag past its TTL is served stale while the upstream is down')
  t.equal(stale.header('docker-content-digest'), v2.manifest.digest)
  t.match(stale.header('warning'), /stale/)
  const byDigest = await get(`${ferry.url}/v2/app/web/manifests/${v2.manifest.digest}`, accept)
  t.equal(byDigest.status, 200)
  const blob = await get(`${ferry.url}/v2/app/web/blobs/${layer.digest}`)
  t.equal(digestOf(blob.body), layer.digest, 'cached blobs pull with the upstream down')
  const tags = await get(`${ferry.url}/v2/app/web/tags/list`)
  t.equal(tags.status, 200, 'the last good tags list is served')
  t.ok(tags.json<{ tags: string[] }>().tags.includes('stable'))

  const started = Date.now()
  const uncached = await get(`${ferry.url}/v2/app/never-pulled/manifests/latest`, accept)
  t.ok(uncached.status >= 500 && uncached.status <= 504, `uncached name: 5xx (${uncached.status})`)
  t.equal(ociError(uncached)?.code, 'UNAVAILABLE')
  t.ok(Date.now() - started < 5000, 'promptly')
  const uncachedBlob = await get(`${ferry.url}/v2/app/web/blobs/${v1.layers[0]!.digest}`)
  t.ok(uncachedBlob.status >= 500, 'an uncached blob: 5xx')
  t.equal(ociError(uncachedBlob)?.code, 'UNAVAILABLE')

  // and back again
  await upstream.restart()
  const back = await get(`${ferry.url}/v2/app/web/blobs/${v1.layers[0]!.digest}`)
  t.equal(digestOf(back.body), v1.layers[0]!.digest, 'recovers when the upstream returns')
})

t.test('an upstream 429 is passed on with its Retry-After, and a cached tag is served stale through it', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const faulty = await startFaulty(upstream.url)
  t.teardown(() => faulty.close())
  const img = await image()
  await pushImage(upstream.url, 'app/api', 'v1', img)
  const ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: faulty.url, default: true, tagTTL: '200ms', staleIfError: '1h' }] } })
  t.teardown(() => ferry.stop())
  const accept = { accept: img.manifest.mediaType }
  t.equal((await get(`${ferry.url}/v2/app/api/manifests/v1`, accept)).status, 200)

  faulty.fault = () => ({ status: 429, headers: { 'retry-after': '17' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' })
  const limited = await get(`${ferry.url}/v2/app/api/manifests/other`, accept)
  t.equal(limited.status, 429)
  t.equal(ociError(limited)?.code, 'TOOMANYREQUESTS')
  t.equal(limited.header('retry-after'), '17')
  const blob = await get(`${ferry.url}/v2/app/api/blobs/${img.layers[0]!.digest}`)
  t.equal(blob.status, 429)
  t.equal(blob.header('retry-after'), '17')

  await sleep(300)
  const stale = await get(`${ferry.url}/v2/app/api/manifests/v1`, accept)
  t.equal(stale.status, 200, 'rate-limited revalidation serves the cached tag')
  t.equal(stale.header('docker-content-digest'), img.manifest.digest)

  faulty.fault = () => ({ status: 500 })
  await sleep(300)
  t.equal((await get(`${ferry.url}/v2/app/api/manifests/v1`, accept)).status, 200, 'so does a 500')
  const fresh500 = await get(`${ferry.url}/v2/app/api/manifests/nope`, accept)
  t.equal(fresh500.status, 502)
  t.equal(ociError(fresh500)?.code, 'UNAVAILABLE')

  faulty.fault = undefined
  t.equal((await get(`${ferry.url}/v2/app/api/manifests/v1`, accept)).status, 200)
})

t.test('past staleIfError a down upstream is an error, and a tag deleted upstream is gone', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const faulty = await startFaulty(upstream.url)
  t.teardown(() => faulty.close())
  const img = await image()
  await pushImage(upstream.url, 'app/db', 'v1', img)
  await pushImage(upstream.url, 'app/db', 'v2', img)
  const ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: faulty.url, default: true, tagTTL: '200ms', staleIfError: '300ms' }] } })
  t.teardown(() => ferry.stop())
  const accept = { accept: img.manifest.mediaType }
  t.equal((await get(`${ferry.url}/v2/app/db/manifests/v1`, accept)).status, 200)
  faulty.fault = () => ({ status: 503 })
  await sleep(700)
  const expired = await get(`${ferry.url}/v2/app/db/manifests/v1`, accept)
  t.equal(expired.status, 503, 'stale window over: the upstream error is passed on')
  t.equal(ociError(expired)?.code, 'UNAVAILABLE')

  faulty.fault = req => req.method === 'HEAD' && req.url?.includes('/manifests/v1') ? { status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"gone"}]}' } : undefined
  const gone = await get(`${ferry.url}/v2/app/db/manifests/v1`, accept)
  t.equal(gone.status, 404)
  t.equal(ociError(gone)?.code, 'MANIFEST_UNKNOWN')
})

t.test('concurrent pulls of one tag with different Accept sets keep both answers cached', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const img = await image()
  await pushImage(upstream.url, 'app/many', 'v1', img)
  const ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true, tagTTL: '1h' }] } })
  t.teardown(() => ferry.stop())
  const sets = [
    img.manifest.mediaType,
    `${img.manifest.mediaType}, application/vnd.oci.image.index.v1+json`,
    `${img.manifest.mediaType}, application/vnd.docker.distribution.manifest.v2+json`,
    `${img.manifest.mediaType}, application/vnd.docker.distribution.manifest.list.v2+json`,
  ]
  const first = await Promise.all(sets.map(accept => get(`${ferry.url}/v2/app/many/manifests/v1`, { accept })))
  for (const a of first) t.equal(a.header('docker-content-digest'), img.manifest.digest)
  await sleep(300) // tag entries are saved in the background
  const before = upstream.count('GET', '/v2/app/many/manifests/v1')
  for (const accept of sets) t.equal((await get(`${ferry.url}/v2/app/many/manifests/v1`, { accept })).status, 200)
  t.equal(upstream.count('GET', '/v2/app/many/manifests/v1'), before, 'every Accept set was kept: no refetch')
})
