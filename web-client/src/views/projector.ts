import './projector.css'
import { boot } from '../lib/boot'
import { h, mount, perFrame } from '../lib/dom'
import { storedJoinLink, verifiedJoinLink } from '../lib/joinlink'
import { numberGroups, shownItems, type NumberedGroup, type NumberedItem } from '../lib/numbering'
import { groupColor, plenaryRoots, readPlenary, type Plenary, type Screen } from '../lib/plenary'
import { openRoom } from '../lib/room'
import { statusBar } from '../lib/status'

// Projector: slides for the room (docs/PLENARY_LAYOUT.md, `curation.screen`).
//  - focus: the presented item alone, with its number, its group and "item N of M"; the text is as
//    large as fits, never below max(22 px, 3 % of a 16:9 screen's height) (32 px at 1080p); a text
//    too long even then is shown in parts ("part 1 of 2"), never cut.
//  - overview: every shown item, paged through whole columns: each column starts with its group's
//    title ("Migrants 1/2" when the group spans pages), the footer says "page 1 of 3 — more follows".
//  - join: a big QR code of the participant link, the address and the follower count.
//  - blank: a black screen.
// The moderator's console drives it through `curation.screen` and `curation.presenting`; keys as a
// clicker sends them work here too: → PageDown Space next, ← PageUp previous, B blank, F focus /
// overview. Opened with the moderator's token the projector writes curation (so the console follows);
// with the participant token (the organizer's projector link) the keys change only this screen.
export default async function projector(meeting: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  const canWrite = info.role === 'moderator'
  document.title = `${info.title} — projector — plenary`
  document.body.classList.add('projector')
  document.documentElement.classList.add('projector')

  const room = openRoom(meeting, 'plenary', token, { write: canWrite })
  const { curation } = plenaryRoots(room.doc)
  const title = h('h1', { class: 'proj-title', 'data-testid': 'projector-title' }, info.title)
  const stage = h('div', { class: 'proj-stage', 'data-testid': 'projector-stage' })
  const indicator = h('p', { class: 'proj-indicator', 'data-testid': 'indicator', 'aria-live': 'polite' })
  const address = h('p', { class: 'proj-address', 'data-testid': 'address' })
  const status = statusBar(room, { showFollowers: true, showWriters: false })
  mount(
    h('header', { class: 'proj-head' }, title),
    stage,
    h('footer', { class: 'proj-foot' }, indicator, address, h('div', { class: 'proj-status' }, status)),
  )

  // ---- the participant link (QR code) ----
  let qr: HTMLImageElement | null = null
  const host = location.host
  address.textContent = `Follow on your phone: ${host}`
  const ownLink = `${location.origin}/m/${meeting}#token=${encodeURIComponent(token)}`
  const linkReady = (info.role === undefined || info.role === 'participant' ? Promise.resolve(ownLink) : verifiedJoinLink(meeting, storedJoinLink(meeting))).then(async (l) => {
    if (l) {
      const { qrImage } = await import('../lib/qr')
      qr = await qrImage(l, 'QR code of the participant link: follow the plenary on your phone', 600)
    }
    render()
  })
  void linkReady
  addEventListener('storage', (e) => {
    if (e.key !== `plenary-join:${meeting}`) return
    void verifiedJoinLink(meeting, storedJoinLink(meeting)).then(async (l) => {
      qr = l ? await (await import('../lib/qr')).qrImage(l, 'QR code of the participant link: follow the plenary on your phone', 600) : null
      render()
    })
  })

  // ---- local state (keys on this screen), cleared when the moderator changes the remote one ----
  let local: { screen?: Screen | null; presenting?: string | null } = {}
  let remoteSeen = ''
  let page = 0
  let part = 0
  let partsOf = ''
  let lastMode: Screen = 'overview'
  let lastPresenting: string | null = null
  let pageCount = 1
  /** px taken off the stage height by the overview's safety net; reset when the window changes */
  let shrink = 0
  let shrinkFor = ''
  let partCount = 1
  let p: Plenary = readPlenary(room.doc, info.groups, info.title)

  /** Read the document now (a key decides on what is in it, not on the last frame drawn: frames can
   *  lag behind, e.g. in a window in the background); a remote change clears this screen's own. */
  function refresh() {
    p = readPlenary(room.doc, info.groups, info.title)
    const remote = `${p.screen}|${p.presenting}`
    if (remote !== remoteSeen) {
      remoteSeen = remote
      local = {}
    }
  }
  const presentingKey = () => (local.presenting !== undefined ? local.presenting : p.presenting)
  const presentedItem = (): NumberedItem | null => {
    const k = presentingKey()
    return k ? (shownItems(p).find((x) => x.c.key === k) ?? null) : null
  }
  function mode(): Screen {
    const s = local.screen !== undefined ? local.screen : p.screen
    if (s === 'join' || s === 'blank' || s === 'overview') return s
    if (s === 'focus') return presentedItem() ? 'focus' : 'overview'
    return presentedItem() ? 'focus' : 'overview' // no choice made: focus while something is presented
  }

  const write = (fn: () => void) => {
    if (!room.state.synced) return false
    room.doc.transact(fn)
    return true
  }
  function setScreen(s: Screen | null) {
    if (canWrite && write(() => curation.set('screen', s))) return
    local.screen = s
    render()
  }
  function present(key: string | null) {
    part = 0
    if (canWrite && write(() => curation.set('presenting', key))) return
    local.presenting = key
    render()
  }
  function step(d: number) {
    const m = mode()
    if (m === 'blank' || m === 'join') return setScreen(lastMode)
    if (m === 'overview') {
      const next = Math.max(0, Math.min(pageCount - 1, page + d))
      if (next !== page) {
        page = next
        render()
      }
      return
    }
    // focus: the parts of a long item first, then the next item
    if (d > 0 && part < partCount - 1) return (part++, render())
    if (d < 0 && part > 0) return (part--, render())
    const items = shownItems(p)
    const at = items.findIndex((x) => x.c.key === presentingKey())
    const i = at + d
    if (i < 0 || i >= items.length) return
    present(items[i].c.key)
    if (d < 0) part = -1 // show the last part of the previous item
  }
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return
    refresh()
    const k = e.key
    if (k === 'ArrowRight' || k === 'PageDown' || k === ' ' || k === 'ArrowDown') step(1)
    else if (k === 'ArrowLeft' || k === 'PageUp' || k === 'ArrowUp') step(-1)
    else if (k === 'b' || k === 'B' || k === '.') setScreen(mode() === 'blank' ? lastMode : 'blank')
    else if (k === 'f' || k === 'F') {
      if (mode() === 'focus') setScreen('overview')
      else {
        if (!presentedItem()) {
          const first = shownItems(p)[0]
          if (first) present(first.c.key)
        }
        setScreen('focus')
      }
    } else return
    e.preventDefault()
  })

  // ---- sizes: 1u = 1 % of the height of the largest 16:9 box that fits the window ----
  const unit = () => Math.min(innerHeight, (innerWidth * 9) / 16) / 100
  const minText = () => Math.max(22, 3 * unit())
  const overflows = (el: HTMLElement) => el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1

  /** one line if it fits at a readable size, else at most two lines, shrinking; smaller beside a focus slide */
  function fitTitle(t: string, max: number) {
    if (title.textContent !== t) title.textContent = t
    title.title = p.title || info.title
    const u = unit()
    const size = (s: number) => (title.style.fontSize = `${Math.max(18, s * u)}px`)
    title.classList.add('one-line')
    for (let s = max; s >= max * 0.75; s -= 0.2) {
      size(s)
      if (!overflows(title)) return
    }
    title.classList.remove('one-line')
    for (let s = max; s >= max * 0.6; s -= 0.2) {
      size(s)
      if (!overflows(title)) return
    }
  }

  function renderFocus(it: NumberedItem) {
    const text = it.c.text.trim()
    const box = h('div', { class: 'focus-box' })
    const para = h('p', { class: 'focus-text ctext', 'data-testid': 'focus-text' })
    box.append(para)
    const partEl = h('p', { class: 'focus-part', 'data-testid': 'focus-part', hidden: true })
    const slide = h(
      'section',
      { class: `focus ${it.c.status}`, 'data-testid': 'focus', 'data-key': it.c.key, 'aria-current': 'true', style: { '--gc': groupColor(it.g.color) } },
      h(
        'div',
        { class: 'focus-meta' },
        h('span', { class: 'focus-num', 'data-testid': 'focus-number' }, it.label),
        h(
          'span',
          { class: 'focus-head' },
          h('span', { class: 'focus-group', 'data-testid': 'focus-group' }, it.g.title),
          h('span', { class: 'focus-sub' }, h('span', { class: 'focus-pos', 'data-testid': 'focus-pos' }, `item ${it.n} of ${it.of}`), it.c.status === 'final' ? h('span', { class: 'badge final focus-final' }, 'final') : null),
        ),
      ),
      box,
      partEl,
    )
    stage.replaceChildren(slide)
    const u = unit()
    const max = Math.max(minText(), 7.5 * u)
    const min = minText()
    const fits = (size: number, t: string) => {
      para.style.fontSize = `${size}px`
      para.textContent = t
      return !overflows(box)
    }
    let size = min
    if (fits(max, text)) size = max
    else if (fits(min, text)) {
      let lo = min
      let hi = max
      while (hi - lo > 1) {
        const mid = (lo + hi) / 2
        if (fits(mid, text)) lo = mid
        else hi = mid
      }
      size = Math.floor(lo)
    }
    if (fits(size, text)) {
      partCount = 1
      part = 0
      return
    }
    // too long even at the smallest size: parts of whole words, each as much as fits (measured with
    // the part line shown, since it takes room from the text)
    partEl.hidden = false
    partEl.textContent = 'part 1 of 2 — continues'
    const words = text.split(/(?<=\s)/)
    const parts: string[] = []
    let s = 0
    while (s < words.length) {
      let lo = s + 1
      let hi = words.length
      if (!fits(min, words.slice(s, lo).join(''))) {
        parts.push(words[s])
        s++
        continue
      }
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2)
        if (fits(min, words.slice(s, mid).join('') + ' …')) lo = mid
        else hi = mid - 1
      }
      parts.push(words.slice(s, lo).join(''))
      s = lo
    }
    // the same number of parts, balanced (a short last part would waste the slide), if each fits
    const n = parts.length
    const total = text.length
    const balanced: string[] = []
    let acc = ''
    for (const w of words) {
      if (acc && balanced.length < n - 1 && (balanced.join('').length + acc.length + w.length / 2) > ((balanced.length + 1) * total) / n) {
        balanced.push(acc)
        acc = ''
      }
      acc += w
    }
    balanced.push(acc)
    const chosen = balanced.length === n && balanced.every((t, i) => fits(min, t.trim() + (i < n - 1 ? ' …' : ''))) ? balanced : parts
    partCount = chosen.length
    if (part < 0 || part >= partCount) part = partCount - 1
    const last = part === partCount - 1
    const shown = chosen[part].trim() + (last ? '' : ' …')
    // each part as large as it fits
    let lo = min
    let hi = max
    while (hi - lo > 1) {
      const mid = (lo + hi) / 2
      if (fits(mid, shown)) lo = mid
      else hi = mid
    }
    fits(Math.floor(lo), shown)
    partEl.hidden = false
    partEl.textContent = `part ${part + 1} of ${partCount}${last ? '' : ' — continues'}`
  }

  interface Segment {
    ng: NumberedGroup
    cont: boolean
    items: NumberedItem[]
    empty?: boolean
  }
  type Column = (Segment | { text: string; kind: 'intro' | 'closing' })[]

  const groupHead = (ng: NumberedGroup, label: string) =>
    h('h2', { class: 'group-head' }, h('span', { class: 'gnum' }, String(ng.gi)), h('span', { class: 'gtitle' }, ng.g.title), label ? h('span', { class: 'gpage', 'data-testid': 'group-page' }, label) : null, ng.g.closed ? h('span', { class: 'badge' }, 'closed') : null)
  const itemEl = (it: NumberedItem, presenting: string | null) =>
    h(
      'li',
      { class: `${it.c.status}${presenting === it.c.key ? ' presenting' : ''}`, 'data-key': it.c.key, 'aria-current': presenting === it.c.key ? 'true' : null },
      h('span', { class: 'num', 'data-testid': 'number' }, it.label),
      h('span', { class: 'ctext' }, it.c.text),
      it.c.status === 'final' ? h('span', { class: 'badge final' }, 'final') : null,
    )

  function renderOverview(presenting: string | null, presentingChanged: boolean, retry = false) {
    const groups = numberGroups(p)
    // exact (fractional) sizes, rounded towards "less room": a measure 0.4 px wider than the real
    // column would wrap one line less than the page does
    const box = stage.getBoundingClientRect()
    const W = box.width
    const H = Math.floor(box.height) - shrink
    let cols = W >= 1000 ? 2 : 1
    const gap = 2.5 * unit()
    const colWidth = (n: number) => Math.floor((W - gap * (n - 1)) / n) - 1
    const u = unit()
    const base = Math.max(20, 2.8 * u)
    // measure every block at the column width
    const measure = h('div', { class: 'proj-body ov-measure', 'aria-hidden': 'true' })
    measure.style.width = `${colWidth(cols)}px`
    stage.replaceChildren(measure)
    const outer = (el: HTMLElement) => el.getBoundingClientRect().height + parseFloat(getComputedStyle(el).marginTop) + parseFloat(getComputedStyle(el).marginBottom)
    const measureAt = (f: number) => {
      measure.style.setProperty('--ov-size', `${f}px`)
      measure.replaceChildren()
      const hs = groups.map((ng) => groupHead(ng, '10/10 · continued')) // the longest label: never taller in the page
      const lis = groups.map((ng) => ng.shown.map((it) => itemEl(it, presenting)))
      const emptyEl = h('p', { class: 'empty' }, 'No conclusions yet.')
      const intro = h('p', { class: 'intro ctext' }, p.intro)
      const closing = h('p', { class: 'closing ctext' }, p.closing)
      groups.forEach((_, i) => measure.append(h('section', { class: 'pgroup' }, hs[i], h('ol', { class: 'conclusions' }, lis[i]))))
      measure.append(emptyEl, intro, closing)
      return {
        heads: hs.map(outer),
        itemH: lis.map((l) => l.map(outer)),
        emptyH: outer(emptyEl),
        introH: p.intro.trim() ? outer(intro) : 0,
        closingH: p.closing.trim() ? outer(closing) : 0,
      }
    }
    // pack: columns of whole items; a group that goes on in a new column repeats its title there
    const pack = ({ heads, itemH, emptyH, introH, closingH }: ReturnType<typeof measureAt>): Column[] => {
      const columns: Column[] = [[]]
      let used = 0
      const newColumn = () => {
        columns.push([])
        used = 0
      }
      const col = () => columns[columns.length - 1]
      if (introH) {
        col().push({ text: p.intro, kind: 'intro' })
        used += introH
      }
      groups.forEach((ng, gi) => {
        const first = ng.shown.length ? itemH[gi][0] : emptyH
        if (used > 0 && used + heads[gi] + first > H) newColumn()
        let seg: Segment = { ng, cont: false, items: [], empty: !ng.shown.length }
        col().push(seg)
        used += heads[gi] + (ng.shown.length ? 0 : emptyH)
        ng.shown.forEach((it, i) => {
          const ih = itemH[gi][i]
          if (seg.items.length && used + ih > H) {
            newColumn()
            seg = { ng, cont: true, items: [] }
            col().push(seg)
            used = heads[gi]
          }
          seg.items.push(it)
          used += ih
        })
      })
      if (closingH) {
        if (used > 0 && used + closingH > H) newColumn()
        col().push({ text: p.closing, kind: 'closing' })
      }
      return columns
    }
    // the base size, smaller only if one group's title and item do not fit a column
    let font = base
    let m = measureAt(font)
    for (let attempt = 0; attempt < 6; attempt++) {
      const tallest = Math.max(0, ...groups.map((_, i) => m.heads[i] + Math.max(0, ...m.itemH[i])))
      if (tallest <= H || font <= 16) break
      font = Math.max(16, font * 0.88)
      m = measureAt(font)
    }
    let columns = pack(m)
    // few items: as large as still fits one page (read from the back of the room), up to 2×;
    // when they fit one column, that column takes the whole width
    if (columns.length <= cols && font === base) {
      if (cols === 2 && columns.length === 1) {
        cols = 1
        measure.style.width = `${colWidth(1)}px`
        columns = pack(measureAt(font))
      }
      for (let f = base * 1.15; f <= base * 2 + 0.01; f *= 1.15) {
        const cf = pack(measureAt(f))
        if (cf.length > cols) break
        font = f
        columns = cf
      }
    }
    const pages: Column[][] = []
    for (let i = 0; i < columns.length; i += cols) pages.push(columns.slice(i, i + cols))
    pageCount = pages.length
    // which pages each group is on, for "Migrants 1/2"
    const pagesOf = new Map<string, number[]>()
    pages.forEach((pg, pi) =>
      pg.forEach((c) =>
        c.forEach((s) => {
          if (!('ng' in s)) return
          const l = pagesOf.get(s.ng.g.id) ?? []
          if (!l.includes(pi)) l.push(pi)
          pagesOf.set(s.ng.g.id, l)
        }),
      ),
    )
    if (presenting && presentingChanged) {
      const at = pages.findIndex((pg) => pg.some((c) => c.some((s) => 'ng' in s && s.items.some((it) => it.c.key === presenting))))
      if (at >= 0) page = at
    }
    page = Math.max(0, Math.min(pageCount - 1, page))
    const body = h('div', { class: `proj-body ov-page cols-${cols}`, 'data-testid': 'projector-body', 'data-page': String(page + 1), 'data-pages': String(pageCount) })
    body.style.setProperty('--ov-size', `${font}px`)
    body.style.setProperty('--ov-gap', `${gap}px`)
    for (const c of pages[page] ?? []) {
      const colEl = h('div', { class: 'ov-col' })
      for (const s of c) {
        if (!('ng' in s)) {
          colEl.append(h('p', { class: `${s.kind} ctext`, 'aria-label': s.kind === 'intro' ? 'Introduction' : 'Closing' }, s.text))
          continue
        }
        const on = pagesOf.get(s.ng.g.id) ?? [page]
        const label = (on.length > 1 ? `${on.indexOf(page) + 1}/${on.length}` : '') + (s.cont ? ' · continued' : '')
        colEl.append(
          h(
            'section',
            { class: 'pgroup', 'data-group': s.ng.g.id, 'data-cont': s.cont ? 'true' : null, style: { '--gc': groupColor(s.ng.g.color) } },
            groupHead(s.ng, label),
            s.empty ? h('p', { class: 'empty' }, 'No conclusions yet.') : h('ol', { class: 'conclusions' }, s.items.map((it) => itemEl(it, presenting))),
          ),
        )
      }
      body.append(colEl)
    }
    if (!groups.length) body.append(h('p', { class: 'empty' }, 'The conclusions of the working groups will appear here.'))
    stage.replaceChildren(body)
    // safety net: should the page still be taller than the stage (a font that measures differently),
    // lay everything out again with that much less room; kept for the next pages too
    const bottom = Math.max(0, ...[...body.querySelectorAll<HTMLElement>('li, .group-head, .empty, .intro, .closing')].map((e) => e.getBoundingClientRect().bottom))
    const over = bottom - box.bottom
    if (over > 0.5 && shrink < H / 2 && !retry) {
      shrink += Math.ceil(over) + 2
      renderOverview(presenting, presentingChanged, true)
    }
  }

  function renderJoin() {
    const followers = room.state.followers
    stage.replaceChildren(
      h(
        'section',
        { class: 'join-slide', 'data-testid': 'join' },
        qr ? h('div', { class: 'join-qr' }, qr) : null,
        h(
          'div',
          { class: 'join-text' },
          h('p', { class: 'join-big' }, 'Follow the plenary on your phone'),
          qr ? h('p', null, 'Scan the code with your camera.') : h('p', { 'data-testid': 'join-handout' }, 'Scan the code on your handout.'),
          h('p', { class: 'join-host', 'data-testid': 'join-host' }, host),
          followers !== null ? h('p', { class: 'join-count', 'data-testid': 'join-count' }, `${followers} following`) : null,
        ),
      ),
    )
  }

  let lastFollowers: number | null = null
  room.onState((s) => {
    if (s.followers !== lastFollowers) {
      lastFollowers = s.followers
      if (mode() === 'join') render()
    }
  })

  let renderedKey = ''
  const render = perFrame(() => {
    refresh()
    const m = mode()
    fitTitle(p.shortTitle || p.title || info.title, m === 'focus' ? 2.8 : 3.8)
    if (m === 'focus' || m === 'overview') lastMode = m
    document.body.dataset.screen = m
    const key = presentingKey()
    const changed = key !== lastPresenting
    lastPresenting = key
    if (changed && partsOf !== key) {
      if (part !== -1) part = 0
      partsOf = key ?? ''
    }
    stage.setAttribute('aria-label', m === 'focus' ? 'Presented item' : m === 'overview' ? 'All conclusions' : m === 'join' ? 'How to follow' : 'Blank screen')
    address.hidden = m === 'join'
    if (m === 'focus') {
      const it = presentedItem()!
      renderFocus(it)
      const items = shownItems(p)
      indicator.textContent = `${it.label} — ${items.findIndex((x) => x.c.key === it.c.key) + 1} of ${items.length} in all`
    } else if (m === 'overview') {
      const size = `${innerWidth}x${innerHeight}`
      if (size !== shrinkFor) {
        shrinkFor = size
        shrink = 0
      }
      const setIndicator = () => {
        indicator.textContent = pageCount > 1 ? `Page ${page + 1} of ${pageCount}${page < pageCount - 1 ? ' — more follows ▸' : ' — end'}` : ''
        indicator.dataset.more = String(page < pageCount - 1)
      }
      // the indicator may change the footer's height, hence the stage's: lay out again then
      const before = stage.clientHeight
      renderOverview(key, changed || renderedKey !== 'overview')
      setIndicator()
      if (stage.clientHeight !== before) {
        renderOverview(key, false)
        setIndicator()
      }
    } else if (m === 'join') {
      renderJoin()
      indicator.textContent = ''
    } else {
      stage.replaceChildren()
      indicator.textContent = ''
    }
    renderedKey = m
  })
  room.doc.on('update', render)
  room.whenSynced.then(render)
  new ResizeObserver(render).observe(stage)
  void document.fonts?.ready.then(render)
  render()
}
