import { pino, type Logger } from 'pino'

export type { Logger }

// Anything that could carry a credential is redacted at the logger, so a
// careless log call cannot leak one.
const REDACT = [
  'authorization', '*.authorization', '*.headers.authorization', 'req.headers.authorization', 'req.headers.cookie',
  'password', '*.password', 'token', '*.token', 'secret', '*.secret',
]

export function createLogger (level: string, destination?: NodeJS.WritableStream | pino.DestinationStream): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, destination === undefined ? pino.destination({ sync: false }) : destination)
}
