// Manifest media types and the client's Accept header. A tag resolves to
// different manifests depending on what the client accepts (an index, one
// platform's manifest, Docker schema2), so the Accept set is part of what a
// cached tag means.

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json'
export const DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

/** What ferry asks the upstream for when the answer does not depend on the client (fetch by digest). */
export const ALL_MANIFEST_TYPES: readonly string[] = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1]

export const INDEX_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST])

/**
 * The client's Accept header as a sorted, de-duplicated list of the manifest
 * media types it accepts (parameters and q-values dropped, wildcards
 * expanded, other types ignored). Docker varies the order from request to
 * request, so only the set carries meaning.
 */
export function parseAccept (headers: string | string[] | undefined): readonly string[] {
  if (headers === undefined) return []
  const raw = Array.isArray(headers) ? headers.join(',') : headers
  // a fleet sends a handful of distinct Accept headers, over and over
  const known = acceptSets.get(raw)
  if (known !== undefined) return known
  const parsed = Object.freeze(parseAcceptText(raw))
  if (acceptSets.size >= 256) acceptSets.clear()
  acceptSets.set(raw, parsed)
  return parsed
}

const acceptSets = new Map<string, readonly string[]>()

/**
 * Only manifest types carry meaning for a registry: a wildcard stands for the
 * ones it covers, anything else is dropped. So however many Accept headers
 * clients invent, there are at most 2^6 distinct sets (one cache entry and
 * one upstream request each, not one per variant).
 */
function parseAcceptText (raw: string): string[] {
  const types = new Set<string>()
  for (const part of raw.split(',')) {
    const type = part.split(';', 1)[0]!.trim().toLowerCase()
    if (type === '*/*' || type === 'application/*') for (const t of ALL_MANIFEST_TYPES) types.add(t)
    else if (ALL_MANIFEST_TYPES.includes(type)) types.add(type)
  }
  return [...types].sort()
}

export function accepts (accept: readonly string[], mediaType: string): boolean {
  if (accept.length === 0) return false
  const type = mediaType.toLowerCase()
  for (const a of accept) {
    if (a === type || a === '*/*') return true
    if (a.endsWith('/*') && type.startsWith(a.slice(0, -1))) return true
  }
  return false
}

export function isSubset (small: readonly string[], big: readonly string[]): boolean {
  const set = new Set(big)
  return small.every(t => set.has(t))
}

export function sameSet (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i])
}
