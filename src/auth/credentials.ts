// Basic credentials both ways, and the constant-time comparison of secrets:
// one place for what the access check, the push API and the clients of
// upstreams and peers each need.
import { timingSafeEqual } from 'node:crypto'
import type { Credentials } from '../config/region-config.ts'

export function basicHeader (user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

/** `Authorization` for configured credentials (the password read from its variable now); none: no header. */
export function credentialsHeader (c: Credentials | undefined): Record<string, string> {
  return c === undefined ? {} : { authorization: basicHeader(c.username, process.env[c.passwordEnv] ?? '') }
}

/** The user and password of `Basic <base64>` (password '' when there is no colon); `raw` is the decoded text. */
export function decodeBasic (header: string): { user: string, password: string, raw: string } {
  const raw = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
  const colon = raw.indexOf(':')
  return colon >= 0 ? { user: raw.slice(0, colon), password: raw.slice(colon + 1), raw } : { user: raw, password: '', raw }
}

export function sameSecret (a: string, b: string): boolean {
  const x = Buffer.from(a); const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
