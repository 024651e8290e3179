// The region as ferry runs it: what parse.ts makes of a region file (and the
// command line's overrides), every default applied, every duration in ms,
// every size in bytes, every path absolute.
import type { WebhookConfig } from '../observe/webhooks.ts'
import type { LdapConfig } from '../auth/ldap.ts'
import type { OidcConfig } from '../auth/oidc.ts'

export interface Credentials {
  readonly username: string
  /** Name of the environment variable holding the password or token; never the secret itself. */
  readonly passwordEnv: string
}

export interface UpstreamConfig {
  readonly name: string
  readonly url: URL
  /** First path component(s) that route to this upstream: /v2/<prefix>/<repo>/... */
  readonly prefix: string | undefined
  /** Hosts matched against containerd's ?ns= (the URL's host is always included). */
  readonly aliases: readonly string[]
  readonly dockerHub: boolean
  readonly tagTTLMs: number
  readonly staleIfErrorMs: number
  /** How long a 404 from the upstream is remembered (a blob, a manifest, a tag). */
  readonly notFoundTTLMs: number
  readonly credentials: Credentials | undefined
  readonly caFile: string | undefined
  readonly insecure: boolean
  readonly connections: number
  readonly timeouts: { readonly connectMs: number, readonly headersMs: number, readonly bodyIdleMs: number }
}

export type StoreConfig =
  | { readonly type: 'fs', readonly path: string }
  | { readonly type: 's3', readonly bucket: string, readonly region: string | undefined, readonly endpoint: string | undefined, readonly prefix: string, readonly forcePathStyle: boolean }
  | { readonly type: 'gcs', readonly bucket: string, readonly prefix: string, readonly apiEndpoint: string | undefined, readonly projectId: string | undefined }

export type StateConfig =
  | { readonly type: 'embedded' }
  | { readonly type: 'redis', readonly url: string, readonly passwordEnv: string | undefined, readonly keyPrefix: string, readonly leaseMs: number }

/** Another region (a ferry, or any OCI registry) that replication pushes to and a miss may ask. */
export interface PeerConfig {
  readonly name: string
  readonly url: URL
  /** Basic credentials for pushing: for a ferry peer, any username and its replication secret. */
  readonly credentials: Credentials | undefined
  readonly caFile: string | undefined
  readonly insecure: boolean
}

export interface ReplicationRule {
  /** Glob patterns of repository names (`*` within a path segment, `**` across). */
  readonly repositories: readonly string[]
  readonly tags: readonly string[]
  readonly peers: readonly string[]
  /** Deletes of tags and manifests go to the peers too. */
  readonly deletes: boolean
}

export interface ReplicationConfig {
  /** NAME of the environment variable holding the secret this region accepts pushes with; none: no pushes. */
  readonly secretEnv: string | undefined
  readonly peers: readonly PeerConfig[]
  readonly rules: readonly ReplicationRule[]
  /** Blob transfers in flight per peer. */
  readonly concurrency: number
  /** Where `ferry replicate` serves /metrics. */
  readonly metricsListen: { readonly host: string, readonly port: number } | undefined
  /** Edges ask the peers for a missing blob or manifest before the upstream. */
  readonly fallback: boolean
  readonly fallbackTimeoutMs: number
  /** Attempts at an event a peer refuses (4xx), or this region cannot produce, before it goes to the dead letters. */
  readonly attempts: number
  /** This region's edge, which the replicator asks for content the region should hold but does not yet. */
  readonly edge: string | undefined
}

/** Client authentication and access; absent: every client may pull (the embedded default). */
export interface AuthConfig {
  /** An htpasswd file of bcrypt entries. */
  readonly htpasswd: string | undefined
  /** Users in the region file itself: name -> bcrypt hash. */
  readonly users: Readonly<Record<string, string>>
  readonly groups: Readonly<Record<string, readonly string[]>>
  /** Users of an OpenID provider (tokens as passwords); absent: none. */
  readonly oidc: OidcConfig | undefined
  /** Users from a directory; absent: none. */
  readonly ldap: LdapConfig | undefined
  /** The Docker token flow; absent: Basic credentials on every request. */
  readonly token: { readonly keyFile: string, readonly service: string, readonly ttlSeconds: number, readonly realm: string | undefined } | undefined
  readonly access: readonly { readonly repositories: readonly string[], readonly allow: Readonly<Record<string, 'reader' | 'writer' | 'admin'>> }[]
}

/** A namespace whose repositories clients push (and which is never asked of an upstream). */
export interface HostedNamespace {
  /** Ends in "/": `acme/` holds `acme/app`, `acme/tools/x`. */
  readonly prefix: string
  /** Bytes its blobs may take, each counted once in the namespace; undefined: no limit. */
  readonly quota: number | undefined
}

export interface RegionConfig {
  readonly file: string
  readonly region: string
  readonly listen: { readonly host: string, readonly port: number }
  /** Host names (lowercase, with :port where not the default) clients pull from ferry itself by: an `?ns=` naming one is no mirror request. */
  readonly hostnames: readonly string[]
  readonly data: string
  readonly store: StoreConfig
  /** Where tags, the manifest index, cache bookkeeping and fill leases live. */
  readonly state: StateConfig
  /** This proxy's own disk tier in front of a shared store; absent: none. */
  readonly l1: { readonly path: string, readonly maxBytes: number } | undefined
  /** How the other proxies of the region reach this one (fills in flight are served to them). */
  readonly peer: { readonly advertise: string }
  readonly replication: ReplicationConfig
  readonly auth: AuthConfig | undefined
  /** Serve HTTPS from these files (re-read when they change); absent: plain HTTP. */
  readonly tls: { readonly certFile: string, readonly keyFile: string } | undefined
  /** Where access decisions are recorded; absent: nowhere. `file` undefined: stdout. */
  readonly audit: { readonly file: string | undefined, readonly maxBytes: number } | undefined
  /** What one client may cost the upstreams: fetches a second and at once (0 a second: no limit). */
  readonly limits: {
    readonly upstreamFetchesPerSecond: number
    readonly upstreamFetchBurst: number
    /** No byte either way this long: the connection is closed. */
    readonly idleTimeoutMs: number
    readonly headersTimeoutMs: number
    readonly connections: number
    readonly connectionsPerClient: number
  }
  /** Where events are posted. */
  readonly webhooks: readonly WebhookConfig[]
  /** The web console and its API. */
  readonly console: { readonly enabled: boolean }
  /** Where /metrics is served (undefined: on the proxy's port) and the variable holding the token it requires (undefined: open). */
  readonly metrics: { readonly listen: { readonly host: string, readonly port: number } | undefined, readonly tokenEnv: string | undefined }
  /** Processes serving the port; 1 serves from the primary itself. */
  readonly workers: number
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  readonly manifestCacheBytes: number
  readonly cache: {
    /** Upper bound on the bytes of blobs kept; least recently used are evicted past it. */
    readonly maxBytes: number
    readonly resumeAttempts: number
    readonly resumeBackoffMs: number
    /** Memory for blobs of 256 KiB or less (configs, small layers), besides the disk. */
    readonly smallBlobMemory: number
  }
  readonly upstreams: readonly UpstreamConfig[]
  readonly defaultUpstream: UpstreamConfig | undefined
  readonly hosted: readonly HostedNamespace[]
  readonly gc: { readonly intervalMs: number, readonly graceMs: number, readonly uploadsMs: number }
}
