// Repository and tag patterns, as the access rules, the replication rules,
// robot scopes and `ferry audit --repo` write them: `*` within one path
// segment, `**` across segments, everything else literal.
import picomatch from 'picomatch'

// dot: names never start with a dot, but a pattern must not silently skip one that did
const OPTIONS = { dot: true, nobrace: true, noextglob: true, noquantifiers: true } as const

export function globToRegExp (glob: string): RegExp {
  return picomatch.makeRe(glob, OPTIONS)
}

/** True for a name any of `globs` matches. */
export function globMatcher (globs: readonly string[]): (name: string) => boolean {
  const res = globs.map(globToRegExp)
  return name => res.some(re => re.test(name))
}
