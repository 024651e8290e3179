// Benchmark content pushed to the upstream: large random blobs (streamed from
// disk, never held in memory) and many small images.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { once } from 'node:events'
import { request } from 'undici'
import { blob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, pushBlob, pushManifest } from '../test/helpers/images.ts'
import type { SmallImage } from './load.ts'

export async function randomFile (path: string, size: number): Promise<string> {
  const out = createWriteStream(path)
  const hash = createHash('sha256')
  for (let left = size; left > 0;) {
    const chunk = randomBytes(Math.min(left, 4 * 1024 * 1024))
    hash.update(chunk)
    left -= chunk.length
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  return 'sha256:' + hash.digest('hex')
}

export async function pushFile (registry: string, repo: string, path: string, digest: string): Promise<void> {
  const start = await request(`${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  const loc = new URL(start.headers.location as string, registry)
  loc.searchParams.set('digest', digest)
  const put = await request(loc, {
    method: 'PUT', body: createReadStream(path),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(statSync(path).size) },
  })
  const text = await put.body.text()
  if (put.statusCode !== 201) throw new Error(`push ${digest}: ${put.statusCode} ${text}`)
}

/** `count` images, each a manifest, a config and one 4 KiB layer, tagged v1 in <prefix>/img-<i>, 16 pushed at a time. */
export async function seedSmallImages (registry: string, count: number, prefix = 'small', auth?: string): Promise<SmallImage[]> {
  const images: SmallImage[] = []
  const push = async (i: number): Promise<void> => {
    const repo = `${prefix}/img-${i}`
    const layer = blob(OCI_LAYER, randomBytes(4096))
    const config = blob(OCI_CONFIG, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, n: i })))
    const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.bytes.length }],
    })))
    await pushBlob(registry, repo, layer, auth)
    await pushBlob(registry, repo, config, auth)
    await pushManifest(registry, repo, 'v1', manifest, auth)
    images[i] = { repo, tag: 'v1', manifestDigest: manifest.digest, mediaType: OCI_MANIFEST, blobs: [{ digest: config.digest, size: config.bytes.length }, { digest: layer.digest, size: layer.bytes.length }] }
  }
  for (let i = 0; i < count; i += 16) await Promise.all(Array.from({ length: Math.min(16, count - i) }, (_, k) => push(i + k)))
  return images
}
