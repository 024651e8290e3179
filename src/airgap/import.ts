// ferry import: a bundle into this region's hosted namespaces, verified
// before anything becomes visible. First every part's size and sha256
// against bundle.json; then the tar is read once, every blob hashed against
// its name into a staging folder of this bundle's own; only when all of it
// verified are the blobs moved into the store, the manifests put (children
// first, as a push would, so each is checked against what it names) and
// the tags written last: no client sees a tag whose content is missing. A
// corrupt bundle is refused naming the part or the digest, with nothing
// published. Run again after a kill, it reads the parts again, keeps the
// blobs it staged or stored already, and ends in the same state; run twice,
// it changes nothing.
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import { createZstdDecompress } from 'node:zlib'
import { extract as tarExtract } from 'tar-stream'
import { FileAppender } from '../io/file-appender.ts'
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.ts'
import type { LocalView } from '../serve.ts'
import { BUNDLE_FILE, BUNDLE_FORMAT, BundleError, concatParts, verifyParts, type BundleManifest } from './bundle.ts'
import type { Progress } from './progress.ts'

export interface ImportReport {
  /** Tags of the bundle's repositories the bundle does not name: removed (prune), or that would be (prune: 'show'). */
  readonly pruned?: { readonly removed: boolean, readonly tags: readonly { readonly repository: string, readonly tag: string }[] }
  readonly images: number
  readonly tags: number
  readonly manifests: number
  /** Blobs moved into the store by this run (not those the site had). */
  readonly blobs: number
  readonly bytes: number
  readonly ms: number
}

const BLOB_ENTRY = /^blobs\/(sha256|sha512)\/([a-f0-9]{64}|[a-f0-9]{128})$/

export async function readBundleManifest (dir: string): Promise<BundleManifest> {
  let m: BundleManifest
  try {
    m = JSON.parse(await readFile(join(dir, BUNDLE_FILE), 'utf8')) as BundleManifest
  } catch (err) {
    throw new BundleError(`${join(dir, BUNDLE_FILE)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `not JSON (${(err as Error).message})`}`)
  }
  if (m.format !== BUNDLE_FORMAT || !Array.isArray(m.parts) || !Array.isArray(m.images) || (m.compression !== 'none' && m.compression !== 'zstd')) {
    throw new BundleError(`${join(dir, BUNDLE_FILE)}: not a ${BUNDLE_FORMAT} bundle`)
  }
  for (const p of m.parts) {
    if (typeof p.file !== 'string' || p.file.includes('/') || p.file.includes('\\') || p.file.startsWith('.')) throw new BundleError(`${BUNDLE_FILE}: a part named "${String(p.file)}" is not a file beside it`)
  }
  return m
}

export async function importBundle (opts: { dir: string, data: string, view: LocalView, progress: Progress, prune?: 'show' | 'yes' }): Promise<ImportReport> {
  const started = Date.now()
  const { dir, view, progress } = opts
  const bundle = await readBundleManifest(dir)
  for (const img of bundle.images) {
    if (!view.hosted(img.name)) throw new BundleError(`${img.name} is in no hosted namespace of this region: add one for its prefix (hosted: [{prefix: "${img.name.split('/')[0]}/"}])`)
  }
  progress.log({ parts: bundle.parts.length }, 'verifying the parts')
  await verifyParts(dir, bundle.parts, n => progress.bytes(n))

  // one staging folder per bundle (named by its parts' hashes): a second run after a kill finds what the first verified
  const id = createHash('sha256').update(bundle.parts.map(p => p.sha256).join()).digest('hex').slice(0, 16)
  const staging = join(opts.data, 'tmp', `import-${id}`)
  await mkdir(staging, { recursive: true })
  const manifestDigests = new Set(bundle.images.flatMap(i => i.manifests.map(m => m.digest)))
  const bodies = new Map<string, Buffer>()
  const staged: { digest: string, path: string, size: number }[] = []

  progress.log({}, 'verifying every blob')
  const extract = tarExtract()
  const source: Readable = bundle.compression === 'zstd' ? concatParts(dir, bundle.parts).pipe(createZstdDecompress()) : concatParts(dir, bundle.parts)
  const reading = pipeline(source, extract)
  // leaving the loop early (a refusal) ends the pipeline with a premature close: that is not the error to report
  reading.catch(() => {})
  for await (const e of extract) {
    const name = e.header.name
    const m = BLOB_ENTRY.exec(name)
    if (m === null || e.header.type !== 'file') { e.resume(); continue }
    const digest = `${m[1]}:${m[2]}`
    const size = e.header.size ?? 0
    if (manifestDigests.has(digest)) {
      if (size > MAX_MANIFEST_BYTES) throw new BundleError(`manifest ${digest} in the bundle is over 4 MiB`)
      const chunks: Buffer[] = []
      for await (const c of e) chunks.push(c as Buffer)
      const body = Buffer.concat(chunks)
      if (createHash(m[1]!).update(body).digest('hex') !== m[2]) throw new BundleError(`manifest ${digest} in the bundle does not hash to its name`)
      bodies.set(digest, body)
      continue
    }
    const path = join(staging, m[2]!)
    if (await view.hasBlob(digest) || await stat(path).then(s => s.size === size, () => false)) {
      // the store has it, or a run before this one staged it verified
      for await (const c of e as AsyncIterable<Buffer>) progress.bytes(c.length)
      if (!await view.hasBlob(digest)) staged.push({ digest, path, size })
      continue
    }
    const hash = createHash(m[1]!)
    const tmp = `${path}.partial`
    const fh = await open(tmp, 'w')
    const out = new FileAppender(fh, 0)
    try {
      for await (const c of e as AsyncIterable<Buffer>) {
        hash.update(c)
        progress.bytes(c.length)
        // behind the stream, in one writev per round
        if (!await out.write(c, 8 * 1024 * 1024)) break
      }
    } finally {
      await out.drained()
      await fh.close()
    }
    const failed = out.error
    if (failed !== undefined) {
      await rm(tmp, { force: true })
      throw new BundleError(`blob ${digest} could not be staged on this region's disk: ${failed.message}`)
    }
    if (hash.digest('hex') !== m[2]) {
      await rm(tmp, { force: true })
      throw new BundleError(`blob ${digest} in the bundle does not hash to its name`)
    }
    await rename(tmp, path)
    staged.push({ digest, path, size })
  }
  await reading
  const report = await publish({ bundle, view, bodies, staged, staging, progress, started })
  if (opts.prune === undefined) return report
  // only on request, and said before it is done: the tags of the bundle's repositories that it does not name
  const named = new Set(bundle.images.filter(i => !i.reference.includes(':')).map(i => `${i.name}:${i.reference}`))
  const tags: { repository: string, tag: string }[] = []
  for (const repository of new Set(bundle.images.map(i => i.name))) {
    for (const tag of (await view.tags(repository)).sort()) if (!named.has(`${repository}:${tag}`)) tags.push({ repository, tag })
  }
  for (const x of tags) progress.log(x, opts.prune === 'yes' ? 'pruning' : 'would prune')
  if (opts.prune === 'yes') for (const x of tags) await view.deleteTag(x.repository, x.tag)
  return { ...report, pruned: { removed: opts.prune === 'yes', tags } }
}

async function publish (o: { bundle: BundleManifest, view: LocalView, bodies: Map<string, Buffer>, staged: { digest: string, path: string, size: number }[], staging: string, progress: Progress, started: number }): Promise<ImportReport> {
  const { bundle, view, bodies, progress } = o
  // everything verified: from here on the region changes
  let blobs = 0; let bytes = 0
  for (const s of o.staged) {
    if (await view.hasBlob(s.digest)) continue
    await view.adoptBlob(s.digest, s.path, s.size)
    blobs++; bytes += s.size
  }
  let manifests = 0; let tags = 0
  const body = async (digest: string): Promise<{ mediaType: string | undefined, body: Buffer }> => {
    const inBundle = bodies.get(digest)
    if (inBundle !== undefined) return { mediaType: undefined, body: inBundle }
    const held = await view.manifestBody(digest)
    if (held === undefined) throw new BundleError(`manifest ${digest} is neither in the bundle nor on this site (a bundle made --since another site's inventory?)`)
    return held
  }
  for (const img of bundle.images) {
    for (const m of img.manifests) {
      const { body: b } = await body(m.digest)
      const parsed = parseManifest(b)
      for (const d of [...(parsed.config !== undefined ? [parsed.config] : []), ...parsed.layers]) {
        if (!await view.linkBlob(img.name, d.digest)) throw new BundleError(`blob ${d.digest} of ${img.name} is neither in the bundle nor on this site`)
      }
      await view.putManifest(img.name, m.digest, m.mediaType, b)
      manifests++
    }
    progress.imageDone()
  }
  // tags last: each names a manifest whose content is all in place now
  for (const img of bundle.images) {
    if (img.reference.includes(':')) continue
    const { body: b } = await body(img.digest)
    await view.putManifest(img.name, img.reference, img.mediaType, b)
    tags++
  }
  await rm(o.staging, { recursive: true, force: true })
  return { images: bundle.images.length, tags, manifests, blobs, bytes, ms: Date.now() - o.started }
}
