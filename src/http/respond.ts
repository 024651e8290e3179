// Writing responses. The one place an error becomes an OCI error body.
import type { ServerResponse } from 'node:http'
import { OciError } from '../oci/errors.ts'

export const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' }

export function errorBody (err: OciError): string {
  return JSON.stringify({ errors: [{ code: err.code, message: err.message, detail: err.detail }] })
}

export function sendError (res: ServerResponse, err: OciError, head: boolean): void {
  if (res.headersSent) {
    // too late for a status: cut the transfer so the client sees it fail
    res.destroy(err)
    return
  }
  const body = errorBody(err)
  res.writeHead(err.status, {
    ...API_VERSION_HEADER,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...err.headers,
  })
  res.end(head ? undefined : body)
}

export function sendBody (res: ServerResponse, status: number, headers: Record<string, string | number>, body: string | Buffer, head: boolean): void {
  res.writeHead(status, { ...API_VERSION_HEADER, 'content-length': Buffer.byteLength(body), ...headers })
  res.end(head ? undefined : body)
}
