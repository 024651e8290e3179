// Tags lists and referrers: always forwarded to the upstream (they change
// without notice), with the last good answer kept and served when the
// upstream is down. Referrers fall back to the referrers tag schema
// (distribution-spec "Referrers Tag Schema") for upstreams without the API.
import { OciError, UpstreamUnavailable } from '../oci/errors.ts'
import { parseManifest } from '../oci/manifest.ts'
import { OCI_INDEX } from '../oci/media-types.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { ListAnswer, RegionState } from '../store/region-state.ts'
import type { Route } from '../upstream/router.ts'
import { readLimited } from '../upstream/read-body.ts'
import type { UpstreamResponse } from '../upstream/upstream.ts'

const MAX_LIST_BYTES = 16 * 1024 * 1024

export interface ListResult extends ListAnswer {
  readonly stale: boolean
  readonly filtersApplied?: string
}

export class ListCache {
  private readonly state: RegionState
  private readonly log: Logger
  private readonly metrics: Metrics

  constructor (state: RegionState, log: Logger, metrics: Metrics) {
    this.state = state
    this.log = log
    this.metrics = metrics
  }

  /** `clientName` is the name the client used; pagination links are rewritten to it. */
  async tags (route: Route, clientName: string, query: { n?: number, last?: string }): Promise<ListResult> {
    const params = new URLSearchParams()
    if (query.n !== undefined) params.set('n', String(query.n))
    if (query.last !== undefined) params.set('last', query.last)
    const qs = params.toString()
    return await this.forward(route, `tags|${qs}`, async () => {
      const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: 'tags/list', query: qs, kind: 'tags' })
      if (res.status !== 200) throw await route.upstream.errorFrom(res, 'tags', route.repo)
      const doc = JSON.parse(await readLimited(res.body, MAX_LIST_BYTES)) as { name?: unknown, tags?: unknown }
      if (!Array.isArray(doc.tags) && doc.tags !== null && doc.tags !== undefined) throw new UpstreamUnavailable(502, 'upstream sent an invalid tags list', { upstream: route.upstream.name })
      const tags = ((doc.tags ?? []) as unknown[]).filter((x): x is string => typeof x === 'string')
      const link = rewriteLink(res, clientName, 'tags/list')
      const page = link === undefined ? paginate(tags, query, clientName) : { tags, link }
      return { contentType: 'application/json', link: page.link, body: JSON.stringify({ name: clientName, tags: page.tags }), fetchedAt: Date.now() }
    })
  }

  async referrers (route: Route, clientName: string, subject: Digest, artifactType: string | undefined): Promise<ListResult> {
    const answer = await this.forward(route, `referrers|${subject.value}`, async () => {
      const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `referrers/${subject.value}`, kind: 'referrers', headers: { accept: OCI_INDEX } })
      if (res.status === 200) {
        const body = await readLimited(res.body, MAX_LIST_BYTES)
        parseManifest(Buffer.from(body))
        return { contentType: OCI_INDEX, link: rewriteLink(res, clientName, `referrers/${subject.value}`), body, fetchedAt: Date.now() }
      }
      if (res.status !== 404) throw await route.upstream.errorFrom(res, 'referrers', subject.value)
      res.body.resume()
      return await this.referrersTag(route, subject)
    })
    if (artifactType === undefined) return answer
    const index = JSON.parse(answer.body) as { manifests?: { artifactType?: string }[] }
    index.manifests = (index.manifests ?? []).filter(d => d.artifactType === artifactType)
    return { ...answer, body: JSON.stringify(index), filtersApplied: 'artifactType' }
  }

  /** An upstream without the referrers API: the index tagged <alg>-<hex>, or an empty index. */
  private async referrersTag (route: Route, subject: Digest): Promise<ListAnswer> {
    const tag = `${subject.algorithm}-${subject.hex}`
    const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `manifests/${tag}`, kind: 'manifest', headers: { accept: OCI_INDEX } })
    if (res.status === 404) {
      res.body.resume()
      return { contentType: OCI_INDEX, link: undefined, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), fetchedAt: Date.now() }
    }
    if (res.status !== 200) throw await route.upstream.errorFrom(res, 'referrers', subject.value)
    const body = await readLimited(res.body, MAX_LIST_BYTES)
    const parsed = parseManifest(Buffer.from(body))
    return { contentType: OCI_INDEX, link: undefined, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: parsed.manifests }), fetchedAt: Date.now() }
  }

  private async forward (route: Route, key: string, fetch: () => Promise<ListAnswer>): Promise<ListResult> {
    const upstream = route.upstream.name
    try {
      const answer = await fetch()
      await this.state.putList(upstream, route.repo, key, answer)
      return { ...answer, stale: false }
    } catch (err) {
      const upstreamDown = !(err instanceof OciError) || err.code === 'UNAVAILABLE' || err.code === 'TOOMANYREQUESTS'
      if (upstreamDown) {
        const last = await this.state.getList(upstream, route.repo, key)
        if (last !== undefined) {
          this.metrics.cache.inc({ kind: 'list', result: 'stale' })
          this.log.warn({ upstream, repo: route.repo, key, err: (err as Error).message }, 'upstream failed; serving last good list')
          return { ...last, stale: true }
        }
      }
      if (err instanceof OciError) throw err
      if (err instanceof SyntaxError) throw new UpstreamUnavailable(502, 'upstream sent invalid JSON', { upstream })
      throw route.upstream.networkError(err)
    }
  }
}

/**
 * Upstreams without tag pagination (distribution 2.x) ignore n and last and
 * send every tag; then ferry pages the list itself, in lexical order as the
 * spec orders it, so clients get the same answer from any upstream.
 */
function paginate (tags: readonly string[], query: { n?: number, last?: string }, clientName: string): { tags: readonly string[], link: string | undefined } {
  if (query.n === undefined && query.last === undefined) return { tags, link: undefined }
  let rest = [...tags].sort()
  if (query.last !== undefined) rest = rest.filter(t => t > query.last!)
  if (query.n === undefined || rest.length <= query.n) return { tags: rest, link: undefined }
  const page = rest.slice(0, query.n)
  const next = new URLSearchParams({ n: String(query.n), last: page[page.length - 1] ?? '' })
  return { tags: page, link: query.n === 0 ? undefined : `</v2/${clientName}/tags/list?${next.toString()}>; rel="next"` }
}

/** Point an upstream `Link: </v2/<repo>/tags/list?last=x&n=y>; rel="next"` at the client's name. */
function rewriteLink (res: UpstreamResponse, clientName: string, tail: string): string | undefined {
  const link = res.headers.link
  const v = Array.isArray(link) ? link[0] : link
  if (v === undefined) return undefined
  const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(v)
  if (m === null) return undefined
  let query: string
  try { query = new URL(m[1]!, 'http://upstream.invalid').search } catch { return undefined }
  return `</v2/${clientName}/${tail}${query}>; rel="next"`
}
