// Test images, built from real bytes: gzip'd tar layers (so containerd can
// unpack them), configs, OCI and Docker manifests, an index, an artifact
// with a subject. Pushed over the registry API like any client would.
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'

import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { create as createTar } from 'tar'
import { request } from 'undici'
import { scratchDir } from './procs.ts'

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
export const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json'

export function digestOf (b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex')
}

export interface Blob { readonly mediaType: string, readonly bytes: Buffer, readonly digest: string }
export function blob (mediaType: string, bytes: Buffer): Blob { return { mediaType, bytes, digest: digestOf(bytes) } }

/** A gzip'd tar holding `files`. */
export async function layer (files: Record<string, string | Buffer>, mediaType = OCI_LAYER): Promise<{ blob: Blob, diffId: string }> {
  const dir = scratchDir('ferry-layer-')
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true })
      writeFileSync(join(dir, name), content)
    }
    const chunks: Buffer[] = []
    const stream = createTar({ cwd: dir, portable: true, mtime: new Date(0) }, Object.keys(files))
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(c))
    const tarBytes = Buffer.concat(chunks)
    return { blob: blob(mediaType, gzipSync(tarBytes)), diffId: digestOf(tarBytes) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface Image {
  readonly manifest: Blob
  readonly config: Blob
  readonly layers: readonly Blob[]
  readonly platform: { os: string, architecture: string }
}

export async function image (opts: { docker?: boolean, arch?: string, files?: Record<string, string | Buffer>, layerCount?: number } = {}): Promise<Image> {
  const docker = opts.docker ?? false
  const arch = opts.arch ?? 'amd64'
  const layers: Blob[] = []
  const diffIds: string[] = []
  const count = opts.layerCount ?? 1
  for (let i = 0; i < count; i++) {
    const l = await layer(i === 0 && opts.files ? opts.files : { [`layer${i}/${randomBytes(4).toString('hex')}.txt`]: randomBytes(512).toString('hex') }, docker ? DOCKER_LAYER : OCI_LAYER)
    layers.push(l.blob); diffIds.push(l.diffId)
  }
  const config = blob(docker ? DOCKER_CONFIG : OCI_CONFIG, Buffer.from(JSON.stringify({
    architecture: arch, os: 'linux', created: '2026-01-01T00:00:00Z',
    config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: diffIds },
  })))
  const manifest = blob(docker ? DOCKER_MANIFEST : OCI_MANIFEST, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
    layers: layers.map(l => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
  }, null, 3))) // unusual indentation: proves bytes are passed through, not re-encoded
  return { manifest, config, layers, platform: { os: 'linux', architecture: arch } }
}

export function index (images: readonly Image[], docker = false): Blob {
  const type = docker ? DOCKER_LIST : OCI_INDEX
  return blob(type, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: type,
    manifests: images.map(i => ({ mediaType: i.manifest.mediaType, digest: i.manifest.digest, size: i.manifest.bytes.length, platform: i.platform })),
  })))
}

/** An artifact (e.g. an SBOM) whose subject is `subject`. */
export function artifact (subject: Blob, artifactType: string, content: string): { manifest: Blob, config: Blob, layer: Blob } {
  const config = blob(EMPTY_CONFIG, Buffer.from('{}'))
  const layerBlob = blob('text/plain', Buffer.from(content))
  const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType,
    config: { mediaType: EMPTY_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: [{ mediaType: 'text/plain', digest: layerBlob.digest, size: layerBlob.bytes.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
  })))
  return { manifest, config, layer: layerBlob }
}

export async function pushBlob (registry: string, repo: string, b: { bytes: Buffer, digest: string }, auth?: string): Promise<void> {
  const headers: Record<string, string> = auth ? { authorization: auth } : {}
  const start = await request(`${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers })
  await start.body.dump()
  if (start.statusCode !== 202) throw new Error(`upload start ${repo}: ${start.statusCode}`)
  const loc = new URL(start.headers.location as string, registry)
  loc.searchParams.set('digest', b.digest)
  const put = await request(loc, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: b.bytes })
  const text = await put.body.text()
  if (put.statusCode !== 201) throw new Error(`upload ${repo} ${b.digest}: ${put.statusCode} ${text}`)
}

export async function pushManifest (registry: string, repo: string, reference: string, m: Blob, auth?: string): Promise<void> {
  const headers: Record<string, string> = { 'content-type': m.mediaType, ...(auth ? { authorization: auth } : {}) }
  const res = await request(`${registry}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers, body: m.bytes })
  const text = await res.body.text()
  if (res.statusCode !== 201) throw new Error(`manifest ${repo}:${reference}: ${res.statusCode} ${text}`)
}

export async function pushImage (registry: string, repo: string, tag: string | undefined, img: Image, auth?: string): Promise<void> {
  for (const b of [...img.layers, img.config]) await pushBlob(registry, repo, b, auth)
  await pushManifest(registry, repo, tag ?? img.manifest.digest, img.manifest, auth)
}
