// Tags lists and referrers. A repository's tags list is fetched whole (every
// page the upstream sends) at most once per tagTTL, like a tag, and clients'
// pages (n, last) are cut from it here: however many pages clients ask for,
// the upstream is asked once and one answer is kept. Referrers are forwarded
// per subject. The last good answer of either is served when the upstream is
// down. Referrers fall back to the referrers tag schema (distribution-spec
// "Referrers Tag Schema") for upstreams without the API.
import { parseManifest } from '../oci/manifest.ts'
import { OCI_INDEX } from '../oci/media-types.ts'
import { page } from '../oci/paging.ts'
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

const TAGS_KEY = 'tags'
/** How much of a tags list ferry follows: pages, and tags in all. */
const MAX_TAG_PAGES = 100
const MAX_TAGS = 100_000

export class ListCache {
  private readonly state: RegionState
  private readonly log: Logger
  private readonly metrics: Metrics
  private readonly fetching = new Map<string, Promise<ListResult>>()

  constructor (state: RegionState, log: Logger, metrics: Metrics) {
    this.state = state
    this.log = log
    this.metrics = metrics
  }

  /** `clientName` is the name the client used; pagination links name it. */
  async tags (route: Route, clientName: string, query: { n?: number | undefined, last?: string | undefined }): Promise<ListResult> {
    const all = await this.allTags(route)
    const tags = (JSON.parse(all.body) as { tags: string[] }).tags
    const { items, link } = page(tags, query, `/v2/${clientName}/tags/list`)
    return { contentType: 'application/json', link, body: JSON.stringify({ name: clientName, tags: items }), fetchedAt: all.fetchedAt, stale: all.stale }
  }

  /** Every tag of the repository: the kept answer while it is fresh, else every page from the upstream (once, however many ask). */
  private async allTags (route: Route): Promise<ListResult> {
    const repo = canonicalName(route)
    const kept = await this.state.lists.get(repo, TAGS_KEY).catch(() => undefined)
    if (kept !== undefined && Date.now() - kept.fetchedAt < route.upstream.config.tagTTLMs) {
      this.metrics.cache.inc({ kind: 'list', result: 'hit' })
      return { ...kept, stale: false }
    }
    const key = `${route.upstream.name}|${route.repo}`
    let running = this.fetching.get(key)
    if (running === undefined) {
      running = this.forward(route, TAGS_KEY, () => this.fetchAllTags(route)).finally(() => this.fetching.delete(key))
      this.fetching.set(key, running)
    }
    return await running
  }

  private async fetchAllTags (route: Route): Promise<ListAnswer> {
    const tags: string[] = []
    let query = ''
    for (let pages = 0; ; pages++) {
      const list = await route.upstream.tags(route.repo, query)
      const doc = json(list.body, route, 'tags') as { name?: unknown, tags?: unknown }
      if (!Array.isArray(doc.tags) && doc.tags !== null && doc.tags !== undefined) throw invalid(route, 'tags', 'an invalid tags list')
      for (const t of (doc.tags ?? []) as unknown[]) if (typeof t === 'string' && tags.length < MAX_TAGS) tags.push(t)
      const next = nextQuery(list.next)
      if (next === undefined || next === query || tags.length >= MAX_TAGS || pages + 1 >= MAX_TAG_PAGES) {
        if (next !== undefined && next !== query) this.log.warn({ upstream: route.upstream.name, repo: route.repo, tags: tags.length }, 'tags list cut: more pages than ferry follows')
        break
      }
      query = next
    }
    return { contentType: 'application/json', link: undefined, body: JSON.stringify({ tags: [...new Set(tags)].sort() }), fetchedAt: Date.now() }
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
      // an empty referrers index is not worth keeping (random subjects would each leave one behind)
      if (!(key.startsWith('referrers|') && isEmptyIndex(answer.body))) await this.state.lists.put(repo, key, answer)
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

/** The query of an upstream's next page (`/v2/<repo>/tags/list?last=x&n=y`), to ask it the same way. */
function nextQuery (next: string | undefined): string | undefined {
  if (next === undefined) return undefined
  try { return new URL(next, 'http://upstream.invalid').search.slice(1) } catch { return undefined }
}

function isEmptyIndex (body: string): boolean {
  try { return ((JSON.parse(body) as { manifests?: unknown[] }).manifests ?? []).length === 0 } catch { return false }
}

/** Point an upstream's next page (`/v2/<repo>/tags/list?last=x&n=y`) at the client's name. */
function rewriteLink (next: string | undefined, clientName: string, tail: string): string | undefined {
  if (next === undefined) return undefined
  let query: string
  try { query = new URL(next, 'http://upstream.invalid').search } catch { return undefined }
  return `</v2/${clientName}/${tail}${query}>; rel="next"`
}
