// Tags lists and referrers: always forwarded to the upstream (they change
// without notice), with the last good answer kept and served when the
// upstream is down. Referrers fall back to the referrers tag schema
// (distribution-spec "Referrers Tag Schema") for upstreams without the API.
import { parseManifest } from '../oci/manifest.ts'
import { OCI_INDEX } from '../oci/media-types.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { RegistryError } from '../registry-client/errors.ts'
import type { ListAnswer, RegionState } from '../state/region-state.ts'
import { canonicalName, type Route } from '../upstream/router.ts'
import { upstreamDown } from './manifests.ts'

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
  async tags (route: Route, clientName: string, query: { n?: number | undefined, last?: string | undefined }): Promise<ListResult> {
    const params = new URLSearchParams()
    if (query.n !== undefined) params.set('n', String(query.n))
    if (query.last !== undefined) params.set('last', query.last)
    const qs = params.toString()
    return await this.forward(route, `tags|${qs}`, async () => {
      const list = await route.upstream.tags(route.repo, qs)
      const doc = json(list.body, route, 'tags') as { name?: unknown, tags?: unknown }
      if (!Array.isArray(doc.tags) && doc.tags !== null && doc.tags !== undefined) throw invalid(route, 'tags', 'an invalid tags list')
      const tags = ((doc.tags ?? []) as unknown[]).filter((x): x is string => typeof x === 'string')
      const link = rewriteLink(list.next, clientName, 'tags/list')
      const page = link === undefined ? paginate(tags, query, clientName) : { tags, link }
      return { contentType: 'application/json', link: page.link, body: JSON.stringify({ name: clientName, tags: page.tags }), fetchedAt: Date.now() }
    })
  }

  async referrers (route: Route, clientName: string, subject: Digest, artifactType: string | undefined): Promise<ListResult> {
    const answer = await this.forward(route, `referrers|${subject.value}`, async () => {
      const list = await route.upstream.referrers(route.repo, subject)
      if (list === undefined) return await this.referrersTag(route, subject)
      const body = list.body.toString('utf8')
      index(list.body, route)
      return { contentType: OCI_INDEX, link: rewriteLink(list.next, clientName, `referrers/${subject.value}`), body, fetchedAt: Date.now() }
    })
    if (artifactType === undefined) return answer
    const doc = JSON.parse(answer.body) as { manifests?: { artifactType?: string }[] }
    doc.manifests = (doc.manifests ?? []).filter(d => d.artifactType === artifactType)
    return { ...answer, body: JSON.stringify(doc), filtersApplied: 'artifactType' }
  }

  /** An upstream without the referrers API: the index tagged <alg>-<hex>, or an empty index. */
  private async referrersTag (route: Route, subject: Digest): Promise<ListAnswer> {
    const empty = { contentType: OCI_INDEX, link: undefined, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), fetchedAt: Date.now() }
    let got
    try {
      got = await route.upstream.manifest(route.repo, `${subject.algorithm}-${subject.hex}`, [OCI_INDEX])
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'REGISTRY_NOT_FOUND') return empty
      throw err
    }
    const parsed = index(got.body, route)
    return { ...empty, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: parsed.manifests }) }
  }

  private async forward (route: Route, key: string, fetch: () => Promise<ListAnswer>): Promise<ListResult> {
    const upstream = route.upstream.name
    const repo = canonicalName(route)
    try {
      const answer = await fetch()
      await this.state.lists.put(repo, key, answer)
      return { ...answer, stale: false }
    } catch (err) {
      if (upstreamDown(err) || (err instanceof RegistryError && err.code === 'REGISTRY_BAD_ANSWER')) {
        const last = await this.state.lists.get(repo, key)
        if (last !== undefined) {
          this.metrics.cache.inc({ kind: 'list', result: 'stale' })
          this.log.warn({ upstream, repo: route.repo, key, err: (err as Error).message }, 'upstream failed; serving last good list')
          return { ...last, stale: true }
        }
      }
      throw err
    }
  }
}

function invalid (route: Route, resource: 'tags' | 'referrers', what: string): RegistryError {
  return new RegistryError('REGISTRY_BAD_ANSWER', `the upstream sent ${what}`, { registry: route.upstream.name, resource })
}

function json (body: Buffer, route: Route, resource: 'tags' | 'referrers'): unknown {
  try { return JSON.parse(body.toString('utf8')) } catch { throw invalid(route, resource, 'invalid JSON') }
}

/** The upstream's referrers index, checked to be one. */
function index (body: Buffer, route: Route): ReturnType<typeof parseManifest> {
  try { return parseManifest(body) } catch { throw invalid(route, 'referrers', 'an invalid referrers index') }
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

/** Point an upstream's next page (`/v2/<repo>/tags/list?last=x&n=y`) at the client's name. */
function rewriteLink (next: string | undefined, clientName: string, tail: string): string | undefined {
  if (next === undefined) return undefined
  let query: string
  try { query = new URL(next, 'http://upstream.invalid').search } catch { return undefined }
  return `</v2/${clientName}/${tail}${query}>; rel="next"`
}
