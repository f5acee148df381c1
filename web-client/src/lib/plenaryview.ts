import { h } from './dom'
import { groupColor, type Plenary } from './plenary'

/** The curated plenary as read-only markup (participant phone view and projector). */
export function plenaryContent(p: Plenary, opts: { headingLevel?: 2 | 3 } = {}): HTMLElement[] {
  const H = opts.headingLevel === 3 ? 'h3' : 'h2'
  const out: HTMLElement[] = []
  if (p.intro.trim()) out.push(h('section', { class: 'intro', 'aria-label': 'Introduction' }, h('p', { class: 'ctext' }, p.intro)))
  for (const g of p.groups) {
    const items = g.conclusions.filter((c) => !c.hidden && c.text.trim() !== '')
    const sec = h(
      'section',
      { class: 'pgroup', 'data-group': g.id, style: { '--gc': groupColor(g.color) } },
      h(H, { class: 'group-head' }, g.title, g.closed ? h('span', { class: 'badge' }, 'closed') : null),
      items.length
        ? h(
            'ol',
            { class: 'conclusions' },
            items.map((c) =>
              h(
                'li',
                { class: `${c.status}${p.presenting === c.key ? ' presenting' : ''}`, 'data-key': c.key, 'aria-current': p.presenting === c.key ? 'true' : null },
                p.presenting === c.key ? h('span', { class: 'now' }, 'Presenting now') : null,
                h('span', { class: 'ctext' }, c.text),
                c.status === 'final' ? h('span', { class: 'badge final' }, 'final') : null,
              ),
            ),
          )
        : h('p', { class: 'empty' }, 'No conclusions yet.'),
    )
    out.push(sec)
  }
  if (!p.groups.length) out.push(h('p', { class: 'empty' }, 'The plenary summary will appear here as the working groups write their conclusions.'))
  if (p.closing.trim()) out.push(h('section', { class: 'closing', 'aria-label': 'Closing' }, h('p', { class: 'ctext' }, p.closing)))
  return out
}

