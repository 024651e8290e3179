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
