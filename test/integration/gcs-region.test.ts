// ferry with a GCS store (against the GCS JSON API server in test/helpers)
// and an L1: an image pulled through it lands in the bucket by resumable
// upload, and a second proxy with an empty L1 serves it from the bucket
// without asking the upstream.
import { randomBytes } from 'node:crypto'

import { rm } from 'node:fs/promises'

import { join } from 'node:path'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { startGcsServer, type GcsServer } from '../helpers/gcs-server.ts'
import { get } from '../helpers/http.ts'
import { image, pushImage, OCI_MANIFEST } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { scratchDir } from '../helpers/procs.ts'

let upstream: Registry
let gcs: GcsServer
const gcsDir = scratchDir('ferry-gcs-')
const proxies: Ferry[] = []

t.before(async () => {
  upstream = await startRegistry()
  gcs = await startGcsServer(gcsDir)
})
t.teardown(async () => {
  for (const p of proxies) await p.stop()
  await gcs?.close()
  await upstream?.stop()
  await rm(gcsDir, { recursive: true, force: true })
})

async function proxy (): Promise<Ferry> {
  const data = scratchDir('ferry-gcs-proxy-')
  const p = await startFerry({ data, config: {
    data,
    store: { type: 'gcs', bucket: 'ferry-test', prefix: 'eu/', apiEndpoint: gcs.url, projectId: 'test' },
    l1: { path: join(data, 'l1'), maxBytes: '1GiB' },
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
  } })
  proxies.push(p)
  return p
}

t.test('pulled through ferry into a GCS bucket, then served from it by another proxy', async t => {
  const img = await image({ layerCount: 2, files: { 'big.bin': randomBytes(3 * 1024 * 1024) } })
  await pushImage(upstream.url, 'gcs/app', 'v1', img)
  const first = await proxy()
  const m = await get(`${first.url}/v2/gcs/app/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(m.status, 200)
  t.equal(m.headers['docker-content-digest'], img.manifest.digest)
  for (const b of [img.config, ...img.layers]) {
    const p = await pullBlob(`${first.url}/v2/gcs/app/blobs/${b.digest}`)
    t.equal(p.digest, b.digest)
    t.ok(p.complete)
  }
  const objectPath = (digest: string): string => `/storage/v1/b/ferry-test/o/${encodeURIComponent(`eu/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`)}`
  const uploaded = async (): Promise<boolean> => {
    for (const b of [img.config, ...img.layers]) {
      if ((await get(`${gcs.url}${objectPath(b.digest)}`)).status !== 200) return false
    }
    return true
  }
  let done = false
  for (let i = 0; i < 100 && !done; i++) { done = await uploaded(); if (!done) await new Promise(resolve => setTimeout(resolve, 50)) }
  t.ok(done, 'every blob is an object in the bucket')
  t.ok(gcs.calls.some(c => c === 'POST /upload/storage/v1/b/ferry-test/o'), 'by resumable upload')

  const before = upstream.count('GET', '/blobs/')
  const second = await proxy()
  for (const b of [img.config, ...img.layers]) {
    const p = await pullBlob(`${second.url}/v2/gcs/app/blobs/${b.digest}`)
    t.equal(p.digest, b.digest, 'the right bytes from the bucket')
  }
  t.equal(upstream.count('GET', '/blobs/'), before, 'the upstream was not asked for any blob')
  t.ok(gcs.calls.some(c => c.startsWith('GET /storage/v1/b/ferry-test/o/') || c.startsWith('GET /download/')), 'read from the bucket')
})
