// ferry export: mirror the list (so the region holds it all), then write a
// bundle of it. With an inventory of the far site, the manifests and blobs
// it holds stay out; every image's entry in index.json goes whatever, so
// tags move on the far side. The edge fills the region with each blob (as a
// pull would); its bytes then stream from the region's cache into the tar,
// never whole in memory.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createZstdCompress } from 'node:zlib'
import { pack as tarPack } from 'tar-stream'
import { bodyReadable } from '../io/body.ts'
import type { LocalView } from '../serve.ts'
import type { EdgeClient } from './edge-client.ts'
import type { CollectedReference } from './mirror.ts'
import type { Progress } from './progress.ts'
import { BUNDLE_FILE, BUNDLE_FORMAT, PartWriter, partBase, type BundleImage, type BundleManifest } from './bundle.ts'

/** Blobs fetched into the region ahead of the one being written. */
const PREFETCH = 2

/** A fixed time in the tar headers: the same content makes the same bundle. */
const MTIME = new Date('2000-01-01T00:00:00Z')

export interface ExportReport {
  readonly out: string
  readonly parts: number
  readonly images: number
  readonly manifests: number
  readonly blobs: number
  /** Bytes of blobs and manifests written into the tar. */
  readonly bytes: number
  /** Left out because the far site has them (--since). */
  readonly skipped: number
}

export async function writeBundle (opts: {
  out: string
  edge: EdgeClient
  /** The region's blobs read in this process, once the edge has filled them (not through the edge again). */
  view?: Pick<LocalView, 'openBlob'>
  collected: readonly CollectedReference[]
  /** Digests the far site holds. */
  since: ReadonlySet<string>
  partSize: number
  compression: 'none' | 'zstd'
  progress: Progress
}): Promise<ExportReport> {
  const { edge, collected, since, progress } = opts
  const tar = tarPack()
  const parts = new PartWriter(opts.out, partBase(opts.compression), opts.partSize)
  const writing = opts.compression === 'zstd' ? pipeline(tar, createZstdCompress(), parts) : pipeline(tar, parts)
  const entry = async (name: string, size: number, body: Buffer | NodeJS.ReadableStream): Promise<void> => {
    if (Buffer.isBuffer(body)) {
      await new Promise<void>((resolve, reject) => tar.entry({ name, size, mtime: MTIME, mode: 0o644 }, body, err => err ? reject(err) : resolve()))
      return
    }
    const stream = tar.entry({ name, size, mtime: MTIME, mode: 0o644 })
    await pipeline(body, stream)
  }

  const written = new Set<string>()
  let manifests = 0; let blobs = 0; let bytes = 0; let skipped = 0
  // the tar is written one blob at a time; the next blobs are fetched into the region meanwhile, so the upstream and the disk work at once
  const wanted = [...new Map(collected.flatMap(ref => ref.blobs.filter(b => !since.has(b.digest)).map(b => [b.digest, { name: ref.name, size: b.size }] as const))).entries()]
  const prefetched = new Map<string, Promise<unknown>>()
  const prefetch = (from: number): void => {
    for (const [digest, { name, size }] of wanted.slice(from, from + PREFETCH)) {
      if (!prefetched.has(digest)) prefetched.set(digest, edge.fill(name, digest, size).catch(() => undefined))
    }
  }
  let position = 0
  try {
    await entry('oci-layout', 30, Buffer.from('{"imageLayoutVersion":"1.0.0"}'))
    for (const ref of collected) {
      for (const m of ref.manifests) {
        if (written.has(m.digest)) continue
        written.add(m.digest)
        if (since.has(m.digest)) { skipped++; continue }
        await entry(blobPath(m.digest), m.body.length, m.body)
        manifests++; bytes += m.body.length
      }
      for (const b of ref.blobs) {
        if (written.has(b.digest)) continue
        written.add(b.digest)
        if (since.has(b.digest)) { skipped++; continue }
        prefetch(++position)
        await prefetched.get(b.digest)
        const local = await opts.view?.openBlob(b.digest)
        const opened = local !== undefined ? { size: local.size, body: bodyReadable(local.body) } : await edge.openBlob(ref.name, b.digest)
        if (opened.size !== b.size) throw new Error(`blob ${b.digest}: the region has ${opened.size} bytes, the manifest says ${b.size}`)
        opened.body.on('data', (c: Buffer) => progress.bytes(c.length))
        await entry(blobPath(b.digest), opened.size, opened.body)
        blobs++; bytes += b.size
      }
      progress.imageDone()
    }
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: collected.map(ref => {
        const top = ref.manifests.find(m => m.digest === ref.digest)!
        const isDigest = ref.reference.includes(':')
        return {
          mediaType: ref.mediaType,
          digest: ref.digest,
          size: top.body.length,
          annotations: {
            'org.opencontainers.image.ref.name': isDigest ? `${ref.name}@${ref.reference}` : `${ref.name}:${ref.reference}`,
            'io.containerd.image.name': isDigest ? `${ref.name}@${ref.reference}` : `${ref.name}:${ref.reference}`,
          },
        }
      }),
    }
    const indexBody = Buffer.from(JSON.stringify(index))
    await entry('index.json', indexBody.length, indexBody)
    tar.finalize()
    await writing
  } catch (err) {
    tar.destroy(err as Error)
    await writing.catch(() => {})
    throw err
  }
  const images: BundleImage[] = collected.map(ref => ({
    name: ref.name, reference: ref.reference, digest: ref.digest, mediaType: ref.mediaType,
    manifests: ref.manifests.map(m => ({ digest: m.digest, mediaType: m.mediaType })),
  }))
  const manifest: BundleManifest = { format: BUNDLE_FORMAT, created: new Date().toISOString(), compression: opts.compression, parts: parts.parts, images, blobs: manifests + blobs, bytes }
  await writeFile(join(opts.out, BUNDLE_FILE), JSON.stringify(manifest, null, 2) + '\n')
  return { out: opts.out, parts: parts.parts.length, images: images.length, manifests, blobs, bytes, skipped }
}

function blobPath (digest: string): string {
  const [algorithm, hex] = digest.split(':')
  return `blobs/${algorithm}/${hex}`
}
