import { useEffect, useLayoutEffect, useRef, useState } from 'react'
import { createPortal } from 'react-dom'
import { Eye, MoreVertical, Pause, RotateCcw, Trash2 } from 'lucide-react'
import clsx from 'clsx'
import type { Plan } from '../lib/api'

export type RowAction = 'details' | 'pause' | 'restart' | 'delete'

/** Which actions apply to a plan now: the gateway says so in `allowed_actions` (its own rule). */
export function actionsFor(plan: Plan, canDeploy: boolean): RowAction[] {
  const actions: RowAction[] = ['details']
  if (!canDeploy) return actions
  for (const action of ['pause', 'restart', 'delete'] as const) {
    if (plan.allowed_actions.includes(action)) actions.push(action)
  }
  return actions
}

const LABEL: Record<RowAction, string> = { details: 'View details', pause: 'Pause', restart: 'Restart', delete: 'Delete' }
const ICON = { details: Eye, pause: Pause, restart: RotateCcw, delete: Trash2 }

/** The menu is rendered in a portal with fixed position, so the table's overflow never clips
 * it; it opens upward when there is no room below (the command bar sits at the bottom). */
export function ActionsMenu({ plan, actions, onAction }: { plan: Plan; actions: RowAction[]; onAction: (a: RowAction) => void }) {
  const [open, setOpen] = useState(false)
  const [pos, setPos] = useState<{ top: number; left: number } | null>(null)
  const [active, setActive] = useState(0)
  const button = useRef<HTMLButtonElement>(null)
  const menu = useRef<HTMLDivElement>(null)
  const name = plan.artifact?.endpoint_name ?? plan.intent

  useLayoutEffect(() => {
    if (!open || !button.current) return
    const place = () => {
      const r = button.current!.getBoundingClientRect()
      const height = menu.current?.offsetHeight ?? actions.length * 40 + 8
      const width = 176
      const below = r.bottom + 4 + height <= window.innerHeight - 96
      setPos({ top: below ? r.bottom + 4 : Math.max(8, r.top - height - 4), left: Math.max(8, r.right - width) })
    }
    place()
    window.addEventListener('resize', place)
    window.addEventListener('scroll', place, true)
    return () => {
      window.removeEventListener('resize', place)
      window.removeEventListener('scroll', place, true)
    }
  }, [open, actions.length])

  useEffect(() => {
    if (!open) return
    const onDown = (e: MouseEvent) => {
      if (!menu.current?.contains(e.target as Node) && !button.current?.contains(e.target as Node)) setOpen(false)
    }
    document.addEventListener('mousedown', onDown)
    return () => document.removeEventListener('mousedown', onDown)
  }, [open])

  useEffect(() => {
    if (open) menu.current?.querySelectorAll<HTMLElement>('[role="menuitem"]')[active]?.focus()
  }, [open, active, pos])

  const choose = (a: RowAction) => {
    setOpen(false)
    onAction(a)
  }
  const onKeyDown = (e: React.KeyboardEvent) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault()
      setActive((i) => (i + 1) % actions.length)
    } else if (e.key === 'ArrowUp') {
      e.preventDefault()
      setActive((i) => (i - 1 + actions.length) % actions.length)
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      setOpen(false)
      button.current?.focus()
    }
  }

  return (
    <>
      <button
        ref={button}
        type="button"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-label={`Actions for ${name}`}
        onClick={() => {
          setActive(0)
          setOpen((o) => !o)
        }}
        className="rounded-lg p-1.5 text-gray-500 hover:bg-gray-100 hover:text-gray-900 dark:hover:bg-gray-800 dark:hover:text-gray-100"
      >
        <MoreVertical className="h-4 w-4" aria-hidden />
      </button>
      {open &&
        createPortal(
          <div
            ref={menu}
            role="menu"
            aria-label={`Actions for ${name}`}
            onKeyDown={onKeyDown}
            style={{ position: 'fixed', top: pos?.top ?? -9999, left: pos?.left ?? -9999, width: 176 }}
            className="z-50 rounded-lg border border-gray-200 bg-white py-1 shadow-xl dark:border-gray-700 dark:bg-gray-800"
          >
            {actions.map((a) => {
              const Icon = ICON[a]
              return (
                <button
                  key={a}
                  type="button"
                  role="menuitem"
                  tabIndex={-1}
                  onClick={() => choose(a)}
                  className={clsx(
                    'flex w-full items-center gap-2 px-3 py-2 text-left text-sm hover:bg-gray-100 focus:bg-gray-100 focus:outline-none dark:hover:bg-gray-700 dark:focus:bg-gray-700',
                    a === 'delete' && 'text-red-600 dark:text-red-400',
                  )}
                >
                  <Icon className="h-4 w-4" aria-hidden />
                  {LABEL[a]}
                </button>
              )
            })}
          </div>,
          document.body,
        )}
    </>
  )
}
