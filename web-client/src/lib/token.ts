// Capability tokens travel in the URL fragment (#token=…), which browsers never send to a server
// nor put in a Referer header. The page keeps the token in memory (and sessionStorage, so a reload
// of the same tab works without the fragment) and passes it only as the WebSocket `token` param and
// as `Authorization: Bearer` on fetch.

let current: string | null = null

export function readToken(): string | null {
  if (current) return current
  const key = 'plenary-token:' + location.pathname
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token')
  if (fromHash) {
    current = fromHash
    try {
      sessionStorage.setItem(key, fromHash)
    } catch {
      /* storage may be disabled */
    }
    return current
  }
  try {
    current = sessionStorage.getItem(key)
  } catch {
    current = null
  }
  return current
}

/** Parse `/m/{m}/...` routes. */
export interface Route {
  view: 'home' | 'organize' | 'rapporteur' | 'console' | 'projector' | 'participant' | 'notfound'
  meeting?: string
  group?: string
}

const ID = '[a-z0-9][a-z0-9-]{0,62}'

export function parseRoute(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/'
  if (p === '/') return { view: 'home' }
  if (p === '/organize') return { view: 'organize' }
  let r = new RegExp(`^/m/(${ID})/g/(${ID})$`).exec(p)
  if (r) return { view: 'rapporteur', meeting: r[1], group: r[2] }
  r = new RegExp(`^/m/(${ID})/console$`).exec(p)
  if (r) return { view: 'console', meeting: r[1] }
  r = new RegExp(`^/m/(${ID})/projector$`).exec(p)
  if (r) return { view: 'projector', meeting: r[1] }
  r = new RegExp(`^/m/(${ID})$`).exec(p)
  if (r) return { view: 'participant', meeting: r[1] }
  return { view: 'notfound' }
}
