import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react'
import { CheckCircle2, Info, X, XCircle } from 'lucide-react'
import clsx from 'clsx'

type Variant = 'success' | 'error' | 'info'
interface Toast {
  id: number
  message: string
  title?: string
  variant: Variant
}
type Show = (message: string, options?: { title?: string; variant?: Variant }) => void

const ToastContext = createContext<Show>(() => undefined)

export function useToast(): Show {
  return useContext(ToastContext)
}

let nextId = 1

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([])
  const dismiss = useCallback((id: number) => setToasts((all) => all.filter((t) => t.id !== id)), [])
  const show = useCallback<Show>(
    (message, options = {}) => {
      const toast = { id: nextId++, message, title: options.title, variant: options.variant ?? 'info' }
      setToasts((all) => [...all.slice(-4), toast])
      window.setTimeout(() => dismiss(toast.id), toast.variant === 'error' ? 8000 : 5000)
    },
    [dismiss],
  )
  const value = useMemo(() => show, [show])
  return (
    <ToastContext.Provider value={value}>
      {children}
      <div
        aria-live="polite"
        className="pointer-events-none fixed right-4 top-4 z-[60] flex w-[22rem] max-w-[calc(100vw-2rem)] flex-col gap-2"
      >
        {toasts.map((t) => {
          const Icon = t.variant === 'success' ? CheckCircle2 : t.variant === 'error' ? XCircle : Info
          return (
            <div
              key={t.id}
              role={t.variant === 'error' ? 'alert' : 'status'}
              data-testid="toast"
              className={clsx(
                'pointer-events-auto flex items-start gap-3 rounded-lg border p-3 text-sm shadow-lg',
                t.variant === 'success' && 'border-green-200 bg-green-50 text-green-900 dark:border-green-800 dark:bg-green-950 dark:text-green-100',
                t.variant === 'error' && 'border-red-200 bg-red-50 text-red-900 dark:border-red-800 dark:bg-red-950 dark:text-red-100',
                t.variant === 'info' && 'border-gray-200 bg-white text-gray-900 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-100',
              )}
            >
              <Icon className="mt-0.5 h-4 w-4 shrink-0" aria-hidden />
              <div className="flex-1">
                {t.title && <p className="font-semibold">{t.title}</p>}
                <p className="break-words">{t.message}</p>
              </div>
              <button type="button" aria-label="Dismiss notification" onClick={() => dismiss(t.id)} className="rounded p-0.5 opacity-70 hover:opacity-100">
                <X className="h-4 w-4" />
              </button>
            </div>
          )
        })}
      </div>
    </ToastContext.Provider>
  )
}
