// Tiny DOM helpers: no framework, so the participant bundle stays small.
type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, unknown>

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v as EventListener)
      } else if (k === 'class') {
        el.className = String(v)
      } else if (k === 'style' && typeof v === 'object') {
        for (const [sk, sv] of Object.entries(v as Record<string, string>)) {
          if (sk.startsWith('--')) el.style.setProperty(sk, sv)
          else (el.style as unknown as Record<string, string>)[sk] = sv
        }
      } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'readOnly') {
        ;(el as unknown as Record<string, unknown>)[k] = v
      } else {
        el.setAttribute(k, v === true ? '' : String(v))
      }
    }
  }
  append(el, children)
  return el
}

function append(el: Node, children: (Child | Child[])[]) {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c)
    else if (c === null || c === undefined || c === false) continue
    else el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
  }
}

export function clear(el: Element) {
  while (el.firstChild) el.removeChild(el.firstChild)
}

export function mount(...children: (Child | Child[])[]): HTMLElement {
  const main = document.getElementById('main') as HTMLElement
  clear(main)
  append(main, children)
  return main
}

/** Re-render a region while keeping keyboard focus on the element with the same data-focus-key. */
export function rerender(container: Element, build: () => (Child | Child[])[]) {
  const active = document.activeElement as HTMLElement | null
  const key = active && container.contains(active) ? active.getAttribute('data-focus-key') : null
  clear(container)
  append(container, build())
  if (key) {
    const again = container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`)
    again?.focus({ preventScroll: true })
  }
}

/** Coalesce bursts of updates into one call per animation frame. */
export function perFrame(fn: () => void): () => void {
  let queued = false
  return () => {
    if (queued) return
    queued = true
    requestAnimationFrame(() => {
      queued = false
      fn()
    })
  }
}

/** Announce a short message to screen readers and show it as a toast. */
export function announce(message: string) {
  let region = document.getElementById('announcer')
  if (!region) {
    region = h('div', { id: 'announcer', class: 'toast', role: 'status', 'aria-live': 'polite' })
    document.body.appendChild(region)
  }
  region.textContent = message
  region.classList.add('show')
  window.clearTimeout((region as unknown as { _t?: number })._t)
  ;(region as unknown as { _t?: number })._t = window.setTimeout(() => region!.classList.remove('show'), 4000)
}
