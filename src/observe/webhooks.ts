// Webhooks: what happened (a push, a pull, a delete, an event replicated or
// given up on, an upstream gone down, a push over quota) posted to the
// operator's URLs as CloudEvents (structured JSON, specversion 1.0), signed
// with an HMAC-SHA256 of the body when a secret is named. Delivery never
// slows what caused it: `emit` only queues. Each hook has its own queue and
// one sender that retries with backoff; an event that still fails, or that
// finds the queue full, or is queued when the process stops, goes to the
// dead letters (`ferry webhooks --dead-letters`), so every event is either
// delivered at least once or kept there.
import { createHmac, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import type { Logger } from './logger.ts'

import type { EventType } from './webhook-events.ts'
export { EVENT_TYPES, type EventType } from './webhook-events.ts'

export const SIGNATURE_HEADER = 'x-ferry-signature'

export interface WebhookConfig {
  readonly name: string
  readonly url: URL
  readonly events: readonly EventType[]
  /** NAME of the variable holding the HMAC secret; none: unsigned. */
  readonly secretEnv: string | undefined
  /** Attempts before an event goes to the dead letters. */
  readonly attempts: number
  readonly timeoutMs: number
  /** Events held while the receiver is slow or down; past it, new ones go straight to the dead letters. */
  readonly maxQueued: number
}

export interface CloudEvent {
  readonly specversion: '1.0'
  readonly id: string
  readonly source: string
  readonly type: string
  readonly subject: string | undefined
  readonly time: string
  readonly datacontenttype: 'application/json'
  readonly data: Record<string, unknown>
}

export interface WebhookDeadLetter { readonly hook: string, readonly event: CloudEvent, readonly error: string, readonly at: number }

/** Where undeliverable events are kept. */
export interface DeadLetters {
  add (letter: WebhookDeadLetter): Promise<void>
  list (): Promise<WebhookDeadLetter[]>
}

const FIRST_BACKOFF_MS = 500
const MAX_BACKOFF_MS = 60_000

class Hook {
  readonly config: WebhookConfig
  readonly queue: CloudEvent[] = []
  wake: (() => void) | undefined
  /** Events buried since the queue was last found full; undefined while it has room. */
  overflowed: number | undefined
  constructor (config: WebhookConfig) { this.config = config }
}

export class Webhooks {
  private readonly hooks: Hook[]
  private readonly source: string
  private readonly dead: DeadLetters
  private readonly log: Logger
  private readonly agent = new Agent({ connections: 4 })
  private readonly stopping = new AbortController()
  private readonly senders: Promise<void>[]
  /** Retry waits are scaled by this (tests shorten them). */
  private readonly backoffScale: number

  constructor (opts: { hooks: readonly WebhookConfig[], source: string, deadLetters: DeadLetters, log: Logger, backoffScale?: number }) {
    this.hooks = opts.hooks.map(h => new Hook(h))
    this.source = opts.source
    this.dead = opts.deadLetters
    this.log = opts.log
    this.backoffScale = opts.backoffScale ?? 1
    this.senders = this.hooks.map(h => this.send(h))
  }

  /** Something happened: queued for every hook that wants `type`; returns at once. */
  emit (type: EventType, subject: string | undefined, data: Record<string, unknown>): void {
    let event: CloudEvent | undefined
    for (const h of this.hooks) {
      if (!h.config.events.includes(type)) continue
      event ??= { specversion: '1.0', id: randomUUID(), source: this.source, type: `io.ferry.${type}`, subject, time: new Date().toISOString(), datacontenttype: 'application/json', data }
      if (h.queue.length >= h.config.maxQueued) {
        // said once per episode, not per event: under a flood of pulls that would be a flood of log lines
        if (h.overflowed === undefined) this.log.error({ hook: h.config.name, maxQueued: h.config.maxQueued }, 'webhook queue full (the receiver is down or slower than the events); new events go to the dead letters')
        h.overflowed = (h.overflowed ?? 0) + 1
        void this.bury(h, event, 'the queue is full (the receiver is down or slower than the events)', true)
        continue
      }
      h.queue.push(event)
      h.wake?.()
    }
  }

  private async send (h: Hook): Promise<void> {
    const signal = this.stopping.signal
    while (!signal.aborted) {
      const event = h.queue[0]
      if (event === undefined) {
        await new Promise<void>(resolve => { h.wake = resolve; signal.addEventListener('abort', () => resolve(), { once: true }) })
        h.wake = undefined
        continue
      }
      let error = ''
      let delivered = false
      for (let attempt = 1; attempt <= h.config.attempts && !signal.aborted; attempt++) {
        try {
          await this.post(h.config, event)
          delivered = true
          break
        } catch (err) {
          error = (err as Error).message
          if (attempt === h.config.attempts) break
          const wait = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2) * this.backoffScale
          this.log.warn({ hook: h.config.name, type: event.type, attempt, err: error, retryInMs: Math.round(wait) }, 'webhook delivery failed; retrying')
          await sleep(wait, undefined, { signal }).catch(() => {})
        }
      }
      if (signal.aborted && !delivered) break // kept in the queue: close() buries it
      h.queue.shift()
      if (h.overflowed !== undefined && h.queue.length < h.config.maxQueued / 2) {
        this.log.warn({ hook: h.config.name, deadLetters: h.overflowed }, 'webhook queue has room again')
        h.overflowed = undefined
      }
      if (!delivered) await this.bury(h, event, error)
    }
  }

  private async post (config: WebhookConfig, event: CloudEvent): Promise<void> {
    const body = JSON.stringify(event)
    const headers: Record<string, string> = { 'content-type': 'application/cloudevents+json; charset=utf-8' }
    const secret = config.secretEnv === undefined ? undefined : process.env[config.secretEnv]
    if (secret !== undefined && secret !== '') headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
    const res = await request(config.url, { method: 'POST', headers, body, dispatcher: this.agent, headersTimeout: config.timeoutMs, bodyTimeout: config.timeoutMs, signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(config.timeoutMs)]) })
    await res.body.dump()
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`the receiver answered ${res.statusCode}`)
  }

  private async bury (h: Hook, event: CloudEvent, error: string, quiet = false): Promise<void> {
    if (!quiet) this.log.error({ hook: h.config.name, type: event.type, id: event.id, err: error }, 'webhook event not delivered; kept in the dead letters')
    await this.dead.add({ hook: h.config.name, event, error, at: Date.now() }).catch((err: unknown) => {
      this.log.error({ hook: h.config.name, err: (err as Error).message }, 'a webhook dead letter could not be kept')
    })
  }

  /** Stops sending; what is still queued goes to the dead letters. */
  async close (): Promise<void> {
    this.stopping.abort()
    await Promise.all(this.senders)
    for (const h of this.hooks) for (const event of h.queue.splice(0)) await this.bury(h, event, 'not sent before the process stopped')
    await this.agent.close()
  }
}
