export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message)
  }
}

export interface GroupInfo {
  id: string
  title: string
  closed?: boolean
}
export interface MeetingInfo {
  id: string
  title: string
  groups: GroupInfo[]
  role?: 'moderator' | 'participant' | 'rapporteur'
  group?: string
  /** the groups' notes are for rapporteurs and moderators only: participants follow the plenary */
  notes_private?: boolean
}

/** fetch JSON from the plenary API; the token goes in the Authorization header, never the URL. */
export async function api<T>(path: string, token: string | null, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (token) headers.Authorization = `Bearer ${token}`
  if (init.body !== undefined) headers['Content-Type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      referrerPolicy: 'no-referrer',
      cache: 'no-store',
    })
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check the connection and try again.')
  }
  const text = await res.text()
  let data: unknown = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    data = null
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `Request failed (${res.status}).`)
  }
  return data as T
}

/** Download a protected file (e.g. an export) with the bearer token and save it. */
export async function download(path: string, token: string, filename: string, open = false) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, referrerPolicy: 'no-referrer', cache: 'no-store' })
  if (!res.ok) {
    let msg = `Download failed (${res.status}).`
    try {
      msg = (await res.json()).error.message ?? msg
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, 'download_failed', msg)
  }
  const blob = await res.blob()
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  if (open) {
    a.target = '_blank'
    a.rel = 'noopener'
  } else {
    a.download = filename
  }
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'This link is not valid (the token was not accepted). Ask the organizer for a new link.'
    if (e.status === 403) return 'This link belongs to another meeting.'
    if (e.status === 404) return 'This meeting or group does not exist.'
    return e.message
  }
  return e instanceof Error ? e.message : String(e)
}
