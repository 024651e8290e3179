// WWW-Authenticate challenges (RFC 9110 11.6.1) as registries send them:
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"
//   Basic realm="Registry Realm"

export interface Challenge { readonly scheme: string, readonly params: Readonly<Record<string, string>> }

export function parseChallenges (header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return []
  const out: Challenge[] = []
  for (const value of Array.isArray(header) ? header : [header]) {
    // scheme, then comma-separated key=value or key="quoted, value"
    const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)((?:[A-Za-z0-9_-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/y
    let m: RegExpExecArray | null
    while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
      if (m[0].length === 0) break
      const params: Record<string, string> = {}
      const pre = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g
      let p: RegExpExecArray | null
      while ((p = pre.exec(m[2] ?? '')) !== null) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!
      out.push({ scheme: m[1]!.toLowerCase(), params })
    }
  }
  return out
}
