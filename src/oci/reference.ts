// Repository names, tags and digests, validated once at the edge
// (distribution-spec "Pulling manifests" and the grammar in
// distribution/reference). Past this point they are trusted values.
import { DigestInvalid, NameInvalid, TagInvalid } from './errors.ts'

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`)
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
export const MAX_NAME_LENGTH = 255

export type DigestAlgorithm = 'sha256' | 'sha512'
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 }

export interface Digest {
  readonly algorithm: DigestAlgorithm
  readonly hex: string
  /** `algorithm:hex`, the canonical form. */
  readonly value: string
}

export type Reference =
  | { readonly kind: 'tag', readonly tag: string }
  | { readonly kind: 'digest', readonly digest: Digest }

export function parseName (name: string): string {
  if (name.length === 0) throw new NameInvalid(name, 'empty name')
  if (name.length > MAX_NAME_LENGTH) throw new NameInvalid(name.slice(0, 64) + '...', `longer than ${MAX_NAME_LENGTH} characters`)
  if (!NAME_RE.test(name)) throw new NameInvalid(name, 'components must be lowercase alphanumerics separated by ".", "_", "__" or "-", joined by "/"')
  return name
}

export function parseDigest (text: string): Digest {
  const colon = text.indexOf(':')
  if (colon <= 0) throw new DigestInvalid(text, 'expected algorithm:hex')
  const algorithm = text.slice(0, colon)
  const hex = text.slice(colon + 1)
  if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new DigestInvalid(text, `unsupported algorithm "${algorithm.slice(0, 32)}"`)
  if (hex.length !== HEX_LENGTH[algorithm]) throw new DigestInvalid(text, `${algorithm} needs ${HEX_LENGTH[algorithm]} hex characters`)
  if (!/^[a-f0-9]+$/.test(hex)) throw new DigestInvalid(text, 'hex part must be lowercase [a-f0-9]')
  return { algorithm, hex, value: text }
}

export function parseReference (text: string): Reference {
  if (text.includes(':')) return { kind: 'digest', digest: parseDigest(text) }
  if (!TAG_RE.test(text)) throw new TagInvalid(text.slice(0, 160))
  return { kind: 'tag', tag: text }
}

export function referenceString (ref: Reference): string {
  return ref.kind === 'tag' ? ref.tag : ref.digest.value
}
