import { h } from './dom'

/** Dark mode and larger-text switches (kept per device in localStorage). */
export function prefsControls(): HTMLElement {
  const root = document.documentElement
  const store = (k: string, v: string) => {
    try {
      localStorage.setItem(k, v)
    } catch {
      /* ignore */
    }
  }
  const dark = h('button', { type: 'button', class: 'small', 'aria-pressed': String(root.dataset.theme === 'dark'), 'data-testid': 'dark-toggle' }, 'Dark mode')
  dark.addEventListener('click', () => {
    const on = root.dataset.theme !== 'dark'
    root.dataset.theme = on ? 'dark' : 'light'
    dark.setAttribute('aria-pressed', String(on))
    store('plenary-theme', root.dataset.theme)
  })
  const large = h('button', { type: 'button', class: 'small', 'aria-pressed': String(root.dataset.text === 'large'), 'data-testid': 'text-toggle' }, 'Larger text')
  large.addEventListener('click', () => {
    const on = root.dataset.text !== 'large'
    if (on) root.dataset.text = 'large'
    else delete root.dataset.text
    large.setAttribute('aria-pressed', String(on))
    store('plenary-text', on ? 'large' : 'normal')
  })
  return h('div', { class: 'row prefs', role: 'group', 'aria-label': 'Display' }, dark, large)
}
