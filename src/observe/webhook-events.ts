/** What a webhook may be told of (the CloudEvents type is `io.ferry.<type>`). */
export const EVENT_TYPES = ['push', 'pull', 'delete', 'replicated', 'replication.failed', 'upstream.down', 'quota.exceeded'] as const
export type EventType = typeof EVENT_TYPES[number]
