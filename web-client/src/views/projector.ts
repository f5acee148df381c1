import './projector.css'
import { boot } from '../lib/boot'
import { h, mount, perFrame, rerender } from '../lib/dom'
import { plenaryRoots, readPlenary } from '../lib/plenary'
import { plenaryContent } from '../lib/plenaryview'
import { openRoom } from '../lib/room'
import { statusBar } from '../lib/status'

/** smallest scale the conclusions are shrunk to before the rest is clipped */
const MIN_FIT = 0.6
/** on screens at least this wide the projector fills the screen exactly (no page scrolling) */
const FIT_MEDIA = '(min-width: 700px) and (min-height: 400px)'

// Projector: read-only, large type, one colour per group, the presented item highlighted and kept in
// view, a QR code of the participant link. Opened with the participant token (the organizer's
// projector link) it shows the QR code built from it; opened with the moderator's token (the
// console's "Open projector") it cannot build the participant link and says so instead.
//
// Auto-fit: on a large screen the page is exactly one screen high. The conclusions are scaled down
// (CSS zoom, down to MIN_FIT) until they fit; beyond that the rest is clipped with faded edges,
// scrolled so that the presented item stays in view (and shown at a readable size).
export default async function projector(meeting: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  document.title = `${info.title} — projector — plenary`
  document.body.classList.add('projector')
  document.documentElement.classList.add('projector')

  const participantLink = `${location.origin}/m/${meeting}#token=${encodeURIComponent(token)}`
  const join = h('div', { class: 'proj-join', 'data-testid': 'join' })
  const title = h('h1', { title: info.title, 'data-testid': 'projector-title' }, info.title)
  const body = h('div', { class: 'proj-body', 'data-testid': 'projector-body' })
  const viewport = h('div', { class: 'proj-viewport', 'data-testid': 'projector-viewport' }, body)
  const room = openRoom(meeting, 'plenary', token)
  plenaryRoots(room.doc)
  const footer = h('div', { class: 'proj-foot' }, statusBar(room, { showFollowers: true, showWriters: false }))
  // large screens: titles and conclusions on the left, a narrow side column with the QR code and the
  // connection state on the right, so that the conclusions get the whole height of the screen
  mount(
    h('div', { class: 'proj-titles' }, title, h('p', { class: 'muted' }, 'Conclusions of the working groups — live')),
    h('aside', { class: 'proj-side', 'aria-label': 'Follow on your phone' }, join, footer),
    viewport,
  )

  // Only offer the QR code when this link really carries a participant token (never leak a
  // moderator's capability onto a big screen).
  if (info.role === undefined || info.role === 'participant') {
    import('../lib/qr').then(async ({ qrImage }) => {
      join.replaceChildren(await qrImage(participantLink, 'QR code of the participant link: follow the plenary on your phone'), h('p', null, 'Follow on your phone'))
      fitLater()
    })
  } else {
    join.classList.add('note')
    join.replaceChildren(h('p', { 'data-testid': 'join-note' }, 'To show the QR code for phones, open the projector link from the organizer page.'))
  }

  const fitMedia = matchMedia(FIT_MEDIA)
  const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)')
  let presentingKey: string | null = null

  const fits = () => viewport.scrollHeight <= viewport.clientHeight + 1
  const setFit = (f: number) => body.style.setProperty('--fit', String(f))
  /** largest scale in [MIN_FIT, 1] at which everything fits (MIN_FIT when nothing does) */
  function bestFit(): number {
    setFit(1)
    if (fits()) return 1
    let lo = MIN_FIT
    let hi = 1
    setFit(lo)
    if (!fits()) return MIN_FIT
    for (let i = 0; i < 7; i++) {
      const mid = (lo + hi) / 2
      setFit(mid)
      if (fits()) lo = mid
      else hi = mid
    }
    return Math.floor(lo * 100) / 100
  }
  /** a long title: down to 70 % of its size to stay whole on one line, then the ellipsis */
  function fitTitle() {
    title.style.fontSize = ''
    if (!fitMedia.matches || title.scrollWidth <= title.clientWidth) return
    const base = parseFloat(getComputedStyle(title).fontSize)
    title.style.fontSize = `${Math.max(base * 0.7, Math.floor((base * title.clientWidth) / title.scrollWidth))}px`
  }
  function fit() {
    fitTitle()
    if (!fitMedia.matches) {
      body.style.removeProperty('--fit')
      body.classList.remove('cols-3')
      viewport.dataset.fit = '1'
      viewport.classList.remove('clip-top', 'clip-bottom')
      return
    }
    // two columns read best; a third one only when it lets the text be clearly larger
    body.classList.remove('cols-3')
    let f = bestFit()
    if (f < 0.75 && viewport.clientWidth > 1100) {
      body.classList.add('cols-3')
      const f3 = bestFit()
      if (f3 >= f + 0.08) f = f3
      else body.classList.remove('cols-3')
    }
    setFit(f)
    viewport.dataset.fit = f.toFixed(2)
  }
  /** scroll the clipped content so that the presented item is in the middle of the screen */
  function keepInView(animate: boolean) {
    const el = presentingKey ? body.querySelector<HTMLElement>(`li[data-key="${CSS.escape(presentingKey)}"]`) : null
    const max = viewport.scrollHeight - viewport.clientHeight
    let top = 0
    if (el && max > 0) {
      const r = el.getBoundingClientRect()
      const v = viewport.getBoundingClientRect()
      const center = r.top - v.top + viewport.scrollTop + r.height / 2
      top = Math.max(0, Math.min(max, Math.round(center - viewport.clientHeight / 2)))
      // an item taller than the screen: show its beginning
      if (r.height > viewport.clientHeight) top = Math.max(0, Math.min(max, Math.round(r.top - v.top + viewport.scrollTop)))
    }
    viewport.scrollTo({ top, behavior: animate && !reducedMotion.matches ? 'smooth' : 'auto' })
    updateEdges(top, max)
  }
  function updateEdges(top = viewport.scrollTop, max = viewport.scrollHeight - viewport.clientHeight) {
    viewport.classList.toggle('clip-top', fitMedia.matches && top > 1)
    viewport.classList.toggle('clip-bottom', fitMedia.matches && top < max - 1)
  }
  viewport.addEventListener('scroll', () => updateEdges(), { passive: true })
  const fitLater = perFrame(() => {
    fit()
    keepInView(false)
  })
  new ResizeObserver(fitLater).observe(viewport)
  fitMedia.addEventListener('change', fitLater)
  void document.fonts?.ready.then(fitLater)

  const render = perFrame(() => {
    const p = readPlenary(room.doc, info.groups, info.title)
    const t = p.title || info.title
    if (title.textContent !== t) {
      title.textContent = t
      title.title = t
    }
    const changed = p.presenting !== presentingKey
    presentingKey = p.presenting
    rerender(body, () => plenaryContent(p, {}))
    fit()
    if (fitMedia.matches) keepInView(changed)
    else if (changed && p.presenting) body.querySelector<HTMLElement>(`li[data-key="${CSS.escape(p.presenting)}"]`)?.scrollIntoView({ block: 'center', behavior: reducedMotion.matches ? 'auto' : 'smooth' })
  })
  room.doc.on('update', render)
  room.whenSynced.then(render)
  render()
}
