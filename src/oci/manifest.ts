// Just enough of a manifest to know its media type and what it references.
import { ManifestInvalid } from './errors.ts'

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

export interface Descriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  readonly artifactType?: string
  readonly annotations?: Record<string, string>
  readonly platform?: unknown
}

export interface ParsedManifest {
  readonly mediaType: string | undefined
  readonly schemaVersion: number | undefined
  readonly artifactType: string | undefined
  readonly config: Descriptor | undefined
  readonly layers: readonly Descriptor[]
  readonly manifests: readonly Descriptor[]
  readonly subject: Descriptor | undefined
  readonly annotations: Record<string, string> | undefined
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function descriptor (v: unknown, where: string): Descriptor {
  if (!isRecord(v) || typeof v.digest !== 'string' || typeof v.mediaType !== 'string' || typeof v.size !== 'number') {
    throw new ManifestInvalid(`${where} is not a descriptor`)
  }
  return v as unknown as Descriptor
}

function descriptors (v: unknown, where: string): Descriptor[] {
  if (v === undefined) return []
  if (!Array.isArray(v)) throw new ManifestInvalid(`${where} is not an array`)
  return v.map((d, i) => descriptor(d, `${where}[${i}]`))
}

export function parseManifest (body: Buffer): ParsedManifest {
  let doc: unknown
  try { doc = JSON.parse(body.toString('utf8')) } catch { throw new ManifestInvalid('not JSON') }
  if (!isRecord(doc)) throw new ManifestInvalid('not a JSON object')
  return {
    mediaType: typeof doc.mediaType === 'string' ? doc.mediaType : undefined,
    schemaVersion: typeof doc.schemaVersion === 'number' ? doc.schemaVersion : undefined,
    artifactType: typeof doc.artifactType === 'string' ? doc.artifactType : undefined,
    config: doc.config === undefined ? undefined : descriptor(doc.config, 'config'),
    layers: descriptors(doc.layers, 'layers'),
    manifests: descriptors(doc.manifests, 'manifests'),
    subject: doc.subject === undefined ? undefined : descriptor(doc.subject, 'subject'),
    annotations: isRecord(doc.annotations) ? doc.annotations as Record<string, string> : undefined,
  }
}

/** The manifest types a client may push. */
export const PUSHABLE_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
])
const INDEXES: ReadonlySet<string> = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

/** Image manifests and indexes nest four or five levels; anything far deeper is an attack on whoever parses it next. */
const MAX_NESTING = 32

/** How deep objects and arrays nest in a JSON text, read byte by byte (strings skipped) before any parser sees it. */
function nesting (body: Buffer): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next byte
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) deepest = depth
      if (deepest > MAX_NESTING) return deepest
    } else if (c === 0x7d || c === 0x5d) {
      depth--
    }
  }
  return deepest
}

function stringMap (v: Record<string, unknown>): boolean {
  return Object.values(v).every(x => typeof x === 'string')
}

/**
 * A pushed manifest, checked against the image spec before anything of it is
 * kept: JSON, schemaVersion 2, a media type that the body and Content-Type
 * agree on and that is an image manifest or an index, descriptors with
 * valid digests and sizes that are non-negative safe integers, a config and
 * layers for an image, manifests for an index. Throws ManifestInvalid (400).
 */
export function validateManifest (body: Buffer, contentType: string | undefined): ParsedManifest & { mediaType: string } {
  if (nesting(body) > MAX_NESTING) throw new ManifestInvalid(`nested deeper than ${MAX_NESTING} levels`)
  let parsed: ParsedManifest
  try { parsed = parseManifest(body) } catch (err) {
    throw err instanceof ManifestInvalid ? err : new ManifestInvalid('not JSON')
  }
  const declared = parsed.mediaType
  if (declared !== undefined && contentType !== undefined && declared !== contentType) {
    throw new ManifestInvalid(`the body's mediaType ${declared.slice(0, 100)} is not its Content-Type ${contentType.slice(0, 100)}`)
  }
  const type = contentType ?? declared
  if (type === undefined) throw new ManifestInvalid('no media type: neither a Content-Type nor a mediaType in the body')
  if (!PUSHABLE_TYPES.has(type)) throw new ManifestInvalid(`not an image manifest or index media type: ${type.slice(0, 100)}`)
  if (parsed.schemaVersion !== 2) throw new ManifestInvalid('schemaVersion must be 2')
  const index = INDEXES.has(type)
  if (index && (parsed.config !== undefined || parsed.layers.length > 0)) throw new ManifestInvalid(`an index (${type}) has no config and no layers`)
  if (!index && parsed.config === undefined) throw new ManifestInvalid(`an image manifest (${type}) needs a config`)
  if (!index && parsed.manifests.length > 0) throw new ManifestInvalid(`an image manifest (${type}) has no manifests list`)
  if (parsed.annotations !== undefined && !stringMap(parsed.annotations)) throw new ManifestInvalid('annotations must map strings to strings')
  const all = [...(parsed.config !== undefined ? [parsed.config] : []), ...parsed.layers, ...parsed.manifests, ...(parsed.subject !== undefined ? [parsed.subject] : [])]
  for (const d of all) {
    if (!DIGEST.test(d.digest)) throw new ManifestInvalid(`a descriptor's digest is not a valid digest: ${d.digest.slice(0, 80)}`)
    if (!Number.isSafeInteger(d.size) || d.size < 0) throw new ManifestInvalid(`a descriptor's size must be a non-negative integer: ${String(d.size).slice(0, 40)}`)
  }
  return { ...parsed, mediaType: type }
}
