import { h } from './dom'
import { numberGroups } from './numbering'
import { groupColor, type Plenary } from './plenary'

/** The curated plenary as read-only markup (participant phone view), numbered `G.N`. */
export function plenaryContent(p: Plenary, opts: { headingLevel?: 2 | 3 } = {}): HTMLElement[] {
  const H = opts.headingLevel === 3 ? 'h3' : 'h2'
  const out: HTMLElement[] = []
  if (p.intro.trim()) out.push(h('section', { class: 'intro', 'aria-label': 'Introduction' }, h('p', { class: 'ctext' }, p.intro)))
  for (const ng of numberGroups(p)) {
    const g = ng.g
    const sec = h(
      'section',
      { class: 'pgroup', 'data-group': g.id, style: { '--gc': groupColor(g.color) } },
      h(H, { class: 'group-head' }, h('span', { class: 'gnum' }, `${ng.gi}.`), ' ', g.title, g.closed ? h('span', { class: 'badge' }, 'closed') : null),
      ng.shown.length
        ? h(
            'ol',
            { class: 'conclusions numbered' },
            ng.shown.map((it) => {
              const now = p.presenting === it.c.key
              return h(
                'li',
                { class: `${it.c.status}${now ? ' presenting' : ''}`, 'data-key': it.c.key, 'aria-current': now ? 'true' : null },
                h('span', { class: 'num', 'data-testid': 'number' }, it.label),
                now ? h('span', { class: 'now' }, 'Presenting now') : null,
                now ? ' ' : null,
                h('span', { class: 'ctext' }, it.c.text),
                it.c.status === 'final' ? h('span', { class: 'badge final' }, 'final') : null,
              )
            }),
          )
        : h('p', { class: 'empty' }, 'No conclusions yet.'),
    )
    out.push(sec)
  }
  if (!p.groups.length) out.push(h('p', { class: 'empty' }, 'The plenary summary will appear here as the working groups write their conclusions.'))
  if (p.closing.trim()) out.push(h('section', { class: 'closing', 'aria-label': 'Closing' }, h('p', { class: 'ctext' }, p.closing)))
  return out
}
