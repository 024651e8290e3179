// The mirror list (mirror.yaml): which images a site wants, by the names its
// clients use (`docker.io/library/alpine`: the upstream's prefix and its
// path), and which of each: tags by name, by regular expression, by semver
// range, or digests; which platforms of an index; whether referrers
// (signatures, SBOMs, attestations) go along. Read once, checked whole: every
// problem is named with where it is.
import { readFile } from 'node:fs/promises'
import semver from 'semver'
import * as v from 'valibot'
import { parseDocument } from 'yaml'

export interface MirrorImage {
  /** As clients name it: `docker.io/library/alpine`. */
  readonly name: string
  readonly tags: readonly string[]
  readonly tagPattern: RegExp | undefined
  readonly semver: string | undefined
  readonly digests: readonly string[]
  /** `os/arch[/variant]`; empty: an index is kept whole. */
  readonly platforms: readonly string[]
  readonly referrers: boolean
}

export interface MirrorList {
  readonly file: string
  readonly images: readonly MirrorImage[]
}

export class MirrorListError extends Error {
  constructor (file: string, problems: readonly string[]) {
    super(`${file}: not a mirror list:\n${problems.map(p => `  - ${p}`).join('\n')}`)
    this.name = 'MirrorListError'
  }
}

const NAME = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/

const imageSchema = v.strictObject({
  name: v.pipe(v.string('a repository name'), v.regex(NAME, 'a repository name as clients use it, with its registry: "docker.io/library/alpine"')),
  tags: v.optional(v.array(v.pipe(v.string('a tag'), v.regex(TAG, 'a tag (letters, digits, "_", ".", "-"; 128 at most)'))), []),
  tagPattern: v.optional(v.pipe(v.string('a regular expression'), v.check(x => { try { void new RegExp(x); return true } catch { return false } }, 'a valid regular expression'))),
  semver: v.optional(v.pipe(v.string('a semver range'), v.check(x => semver.validRange(x) !== null, 'a semver range such as ">=1.26 <2"'))),
  digests: v.optional(v.array(v.pipe(v.string('a digest'), v.regex(DIGEST, 'a digest: sha256:<64 hex>'))), []),
  platforms: v.optional(v.array(v.pipe(v.string('a platform'), v.regex(PLATFORM, 'a platform: os/arch or os/arch/variant, such as "linux/arm64/v8"'))), []),
  referrers: v.optional(v.boolean('true or false'), true),
}, 'one of the known fields (name, tags, tagPattern, semver, digests, platforms, referrers)')

const listSchema = v.strictObject({
  images: v.pipe(v.array(imageSchema, 'a list of images'), v.minLength(1, 'at least one image')),
}, 'one of the known fields (images)')

export async function loadMirrorList (file: string): Promise<MirrorList> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new MirrorListError(file, [`cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`])
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) throw new MirrorListError(file, doc.errors.map(e => `line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0] ?? e.code}`))
  return parseMirrorList(doc.toJS(), file)
}

export function parseMirrorList (raw: unknown, file: string): MirrorList {
  const parsed = v.safeParse(listSchema, raw, { abortEarly: false })
  if (!parsed.success) {
    throw new MirrorListError(file, parsed.issues.map(i => {
      const where = (i.path ?? []).map(p => String(p.key)).join('.')
      return `${where === '' ? '(top)' : where}: expected ${i.expected ?? i.message}, got ${i.received}`
    }))
  }
  const problems: string[] = []
  const images = parsed.output.images.map((img, n) => {
    if (img.tags.length === 0 && img.tagPattern === undefined && img.semver === undefined && img.digests.length === 0) {
      problems.push(`images.${n}: ${img.name} names no tag, tagPattern, semver range or digest`)
    }
    return {
      name: img.name,
      tags: img.tags,
      tagPattern: img.tagPattern === undefined ? undefined : new RegExp(img.tagPattern),
      semver: img.semver,
      digests: img.digests,
      platforms: img.platforms,
      referrers: img.referrers,
    }
  })
  if (problems.length > 0) throw new MirrorListError(file, problems)
  return { file, images }
}

/** A tag that reads as a version: 1, 1.26, v1.26.3 (not 1.26-alpine). */
const VERSION_TAG = /^v?\d+(\.\d+){0,2}$/

/** The tags of `available` an image entry selects, in the upstream's order, each once. */
export function selectTags (image: MirrorImage, available: readonly string[]): string[] {
  const out = new Set<string>(image.tags)
  for (const tag of available) {
    if (image.tagPattern !== undefined && fullMatch(image.tagPattern, tag)) out.add(tag)
    if (image.semver !== undefined && VERSION_TAG.test(tag)) {
      const version = semver.coerce(tag)
      if (version !== null && semver.satisfies(version, image.semver)) out.add(tag)
    }
  }
  return [...out]
}

function fullMatch (re: RegExp, s: string): boolean {
  const m = re.exec(s)
  return m !== null && m.index === 0 && m[0].length === s.length
}

/** Whether a descriptor's platform is among the wanted ones (`os/arch[/variant]`; a wanted one without a variant takes any). */
export function platformWanted (wanted: readonly string[], platform: { os?: string, architecture?: string, variant?: string } | undefined): boolean {
  if (wanted.length === 0) return true
  if (platform === undefined) return false
  return wanted.some(w => {
    const [os, arch, variant] = w.split('/')
    return platform.os === os && platform.architecture === arch && (variant === undefined || platform.variant === variant)
  })
}
