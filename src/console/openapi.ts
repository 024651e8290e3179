// The OpenAPI 3.1 description of the console's API, served at
// /_ferry/api/v1/openapi.json. The tests check every answer the API gives
// against the schemas here (test/integration/console-api.test.ts), so this
// file and api.ts cannot drift apart unnoticed.

const str = { type: 'string' }
const int = { type: 'integer', minimum: 0 }
const num = { type: 'number' }
const nullable = (s: object): object => ({ anyOf: [s, { type: 'null' }] })
const obj = (properties: Record<string, object>, optional: string[] = []): object => ({
  type: 'object',
  properties,
  required: Object.keys(properties).filter(k => !optional.includes(k)),
  additionalProperties: false,
})

const counts = {
  hits: int, misses: int, bytesFromCache: int, bytesFilled: int, bytesFromUpstream: int, pulls: int,
}
const hitRatio = nullable({ type: 'number', minimum: 0, maximum: 1 })
const windowCounts = obj({ ...counts, hitRatio })
const windowTotals = obj({ ...counts, hitRatio, byUpstream: { type: 'object', additionalProperties: windowCounts } })
const descriptor = {
  type: 'object',
  properties: { mediaType: str, digest: str, size: int, artifactType: str, annotations: { type: 'object' }, platform: {}, platformName: nullable(str) },
  required: ['mediaType', 'digest', 'size'],
}

const schemas = {
  Error: obj({ errors: { type: 'array', items: obj({ code: str, message: str, detail: {} }) } }),
  Session: obj({ user: str, kind: { enum: ['user', 'robot', 'replicator', 'anonymous'] }, admin: { type: 'boolean' }, authRequired: { type: 'boolean' }, oidc: { type: 'boolean' }, csrf: str }, ['csrf']),
  Overview: obj({
    region: str,
    proxies: { type: 'array', items: obj({ proxy: str, seenAt: int }) },
    cache: obj({ bytes: num, blobs: num, maxBytes: num }),
    windows: obj({ '1h': windowTotals, '24h': windowTotals, '7d': windowTotals }),
    series: { type: 'array', items: obj({ t: int, hits: int, misses: int, bytesFromCache: int, bytesFromUpstream: int }) },
    upstreams: {
      type: 'array',
      items: obj({
        name: str, url: str, prefix: nullable(str),
        status: { enum: ['up', 'down', 'unknown'] },
        lastSuccessAt: nullable(int), lastErrorAt: nullable(int), lastError: nullable(str), latencyMs: nullable(num),
        rateLimit: nullable(obj({ limit: nullable(int), remaining: int, windowSeconds: nullable(int), seenAt: int })),
      }),
    },
    replication: { type: 'array', items: obj({ peer: str, eventsBehind: nullable(int), bytesBehind: nullable(int), oldestMs: nullable(int), deadLetters: nullable(int) }) },
  }),
  Repositories: obj({
    repositories: { type: 'array', items: obj({ name: str, kind: { enum: ['proxied', 'hosted'] }, upstream: nullable(str), tags: int }, ['upstream']) },
    total: int,
    next: str,
  }, ['next']),
  Tags: obj({
    repository: str,
    tags: {
      type: 'array',
      items: obj({ tag: str, digest: str, mediaType: str, size: int, updatedAt: int, platforms: { type: 'array', items: str }, pulls: int, lastPulledAt: int }, ['lastPulledAt']),
    },
  }),
  Image: obj({
    repository: str, digest: str, mediaType: str, size: int, artifactType: str,
    config: descriptor,
    layers: { type: 'array', items: descriptor },
    manifests: { type: 'array', items: descriptor },
    referrers: { type: 'array', items: obj({ digest: str, mediaType: str, artifactType: str, size: int }, ['artifactType']) },
    annotations: { type: 'object', additionalProperties: str },
    tags: { type: 'array', items: str },
  }, ['artifactType', 'config', 'annotations']),
  Audit: obj({
    records: {
      type: 'array',
      items: {
        type: 'object',
        properties: { time: str, who: str, kind: str, client: str, action: str, repository: str, reference: str, digest: str, decision: { enum: ['allow', 'deny'] }, status: int, bytes: int },
        required: ['time', 'who', 'kind', 'action', 'decision', 'status'],
      },
    },
    total: int,
    note: str,
  }, ['note']),
  Robot: obj({
    name: str, user: str,
    scopes: { type: 'array', items: obj({ repositories: { type: 'array', items: str }, role: { enum: ['reader', 'writer', 'admin'] } }) },
    createdAt: int, expiresAt: nullable(int), revokedAt: nullable(int), active: { type: 'boolean' },
  }),
  Robots: obj({ robots: { type: 'array', items: { $ref: '#/components/schemas/Robot' } } }),
  RobotCreated: obj({ name: str, user: str, secret: str, scopes: { type: 'array', items: obj({ repositories: { type: 'array', items: str }, role: { enum: ['reader', 'writer', 'admin'] } }) } }),
  RobotRevoked: obj({ revoked: str }),
  LoggedOut: obj({ loggedOut: { type: 'boolean' } }),
}

const ref = (name: keyof typeof schemas): object => ({ $ref: `#/components/schemas/${name}` })
const ok = (name: keyof typeof schemas, status = '200'): object => ({
  [status]: { description: 'OK', content: { 'application/json': { schema: ref(name) } } },
  default: { description: 'An OCI error', content: { 'application/json': { schema: ref('Error') } } },
})
const q = (name: string, description: string, required = false): object => ({ name, in: 'query', required, description, schema: { type: 'string' } })

const DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'ferry console API',
    version: '1',
    description: 'What the ferry console shows, as JSON. Authenticate as for the registry API (Basic, or a token from the token flow), or with the session cookie POST /session sets; a session\'s writes carry its CSRF token in X-Ferry-CSRF. Callers see only the repositories the access rules let them pull; robots and the audit log need an admin.',
  },
  servers: [{ url: '/_ferry/api/v1' }],
  components: {
    schemas,
    securitySchemes: {
      basic: { type: 'http', scheme: 'basic' },
      bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      session: { type: 'apiKey', in: 'cookie', name: 'ferry_session' },
    },
  },
  security: [{ basic: [] }, { bearer: [] }, { session: [] }, {}],
  paths: {
    '/session': {
      get: { summary: 'Who is asking', responses: ok('Session') },
      post: {
        summary: 'Log in: sets the session cookie (HttpOnly, SameSite=Strict) and a readable CSRF cookie',
        requestBody: { required: true, content: { 'application/json': { schema: obj({ username: str, password: str }) } } },
        responses: ok('Session'),
      },
      delete: { summary: 'Log out', responses: ok('LoggedOut') },
    },
    '/session/oidc': { get: { summary: 'Sign in through the OpenID provider: a redirect to it (authorization code flow with PKCE)', responses: { 302: { description: 'to the provider' } } } },
    '/session/oidc/callback': { get: { summary: 'The provider\'s redirect back: sets the session cookie, then to /ui/', responses: { 302: { description: 'to the console' } } } },
    '/overview': { get: { summary: 'The region at a glance: cache, hit ratio and bytes over 1 h, 24 h, 7 d, upstream health, replication lag', responses: ok('Overview') } },
    '/repositories': {
      get: {
        summary: 'Repositories the caller may pull, by name, paged',
        parameters: [q('q', 'part of the name'), q('n', 'page size, up to 500 (50)'), q('last', 'the last name of the previous page')],
        responses: ok('Repositories'),
      },
    },
    '/tags': { get: { summary: 'A repository\'s tags', parameters: [q('repository', 'the repository', true)], responses: ok('Tags') } },
    '/image': { get: { summary: 'One manifest: layers, config, platforms, referrers', parameters: [q('repository', 'the repository', true), q('reference', 'a tag or a digest', true)], responses: ok('Image') } },
    '/audit': {
      get: {
        summary: 'Audit search, newest first (admin)',
        parameters: [q('user', 'who'), q('repository', 'a repository pattern'), q('decision', 'allow or deny'), q('from', 'ISO time, inclusive'), q('to', 'ISO time, exclusive'), q('n', 'page size (50)'), q('offset', 'records to skip')],
        responses: ok('Audit'),
      },
    },
    '/robots': {
      get: { summary: 'Robot accounts (admin)', responses: ok('Robots') },
      post: {
        summary: 'Create a robot; its secret is in this answer only (admin)',
        requestBody: { required: true, content: { 'application/json': { schema: obj({ name: str, scopes: { type: 'array' }, expiresInDays: num }, ['expiresInDays']) } } },
        responses: ok('RobotCreated', '201'),
      },
    },
    '/robots/{name}': {
      delete: { summary: 'Revoke a robot (admin)', parameters: [{ name: 'name', in: 'path', required: true, schema: str }], responses: ok('RobotRevoked') },
    },
    '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
  },
}

export function openApiDocument (): typeof DOCUMENT { return DOCUMENT }
