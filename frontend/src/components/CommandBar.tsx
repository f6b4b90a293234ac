import { useId, useMemo, useRef, useState } from 'react'
import { useQueryClient } from '@tanstack/react-query'
import { AlertTriangle, CheckCircle2, Info, Loader2, Send, WifiOff, XCircle } from 'lucide-react'
import clsx from 'clsx'
import { ApiError, type CommandResponse } from '../lib/api'
import { loadRecent, moveHighlight, rememberCommand, visibleItems } from '../lib/suggestions'
import { useToast } from './Toasts'
import { keys } from '../lib/keys'

type Outcome = { kind: 'response'; response: CommandResponse } | { kind: 'error'; error: ApiError }

/** The fixed footer: environment, command input with suggestions floating above it, Send. */
export function CommandBar({ send }: { send: (command: string, env: string) => Promise<CommandResponse> }) {
  const [command, setCommand] = useState('')
  const [env, setEnv] = useState('staging')
  const [open, setOpen] = useState(false)
  const [highlight, setHighlight] = useState(-1)
  const [recent, setRecent] = useState<string[]>(() => loadRecent())
  const [busy, setBusy] = useState(false)
  const [outcome, setOutcome] = useState<Outcome | null>(null)
  const input = useRef<HTMLInputElement>(null)
  const listId = useId()
  const toast = useToast()
  const client = useQueryClient()
  const items = useMemo(() => visibleItems(command, recent), [command, recent])
  const showList = open && items.length > 0

  const pick = (text: string) => {
    setCommand(text)
    setOpen(false)
    setHighlight(-1)
    input.current?.focus()
  }

  const submit = async (e?: React.FormEvent) => {
    e?.preventDefault()
    const text = command.trim()
    if (!text || busy) return
    setBusy(true)
    setOpen(false)
    setOutcome(null)
    try {
      const response = await send(text, env)
      setRecent((r) => rememberCommand(text, r))
      setOutcome({ kind: 'response', response })
      setCommand('')
      if (response.status === 'success') toast(response.message, { variant: 'success', title: 'Command accepted' })
      void client.invalidateQueries({ queryKey: keys.deployments })
      void client.invalidateQueries({ queryKey: keys.metrics })
      void client.invalidateQueries({ queryKey: keys.approvals })
    } catch (err) {
      const error = err instanceof ApiError ? err : new ApiError(String((err as Error).message), 0)
      setOutcome({ kind: 'error', error })
    } finally {
      setBusy(false)
    }
  }

  const onKeyDown = (e: React.KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault()
      if (!open) {
        setOpen(true)
        return
      }
      setHighlight((h) => moveHighlight(h, e.key as 'ArrowDown' | 'ArrowUp', items.length))
    } else if (e.key === 'Enter' && showList && highlight >= 0) {
      e.preventDefault()
      pick(items[highlight].text)
    } else if (e.key === 'Escape') {
      setOpen(false)
      setHighlight(-1)
    }
  }

  return (
    <footer className="fixed inset-x-0 bottom-0 z-40 border-t border-gray-200 bg-white shadow-[0_-4px_12px_rgba(0,0,0,0.06)] dark:border-gray-800 dark:bg-gray-900">
      <div className="mx-auto max-w-7xl px-4 py-3">
        {outcome && <OutcomeBox outcome={outcome} onDismiss={() => setOutcome(null)} />}
        <form onSubmit={submit} className="flex items-center gap-3" aria-label="Deployment command">
          <div className="relative flex-1">
            {showList && (
              <ul
                id={listId}
                role="listbox"
                aria-label="Command suggestions"
                className="absolute bottom-full z-50 mb-2 max-h-80 w-full overflow-y-auto rounded-lg border border-gray-200 bg-white py-1 shadow-xl dark:border-gray-700 dark:bg-gray-800"
              >
                {items.map((item, i) => (
                  <li
                    key={item.text}
                    id={`${listId}-${i}`}
                    role="option"
                    aria-selected={i === highlight}
                    onMouseDown={(e) => e.preventDefault()}
                    onClick={() => pick(item.text)}
                    onMouseEnter={() => setHighlight(i)}
                    className={clsx('flex cursor-pointer items-center justify-between px-4 py-2 text-sm', i === highlight && 'bg-blue-50 dark:bg-gray-700')}
                  >
                    <span>{item.text}</span>
                    {item.recent && <span className="text-xs text-gray-500 dark:text-gray-400">Recent</span>}
                  </li>
                ))}
              </ul>
            )}
            <div className="flex items-center gap-3 rounded-lg border border-gray-200 bg-gray-50 px-3 py-2 focus-within:border-blue-500 focus-within:ring-2 focus-within:ring-blue-200 dark:border-gray-700 dark:bg-gray-800 dark:focus-within:ring-blue-900">
              <label htmlFor="env" className="whitespace-nowrap text-sm font-medium text-gray-600 dark:text-gray-400">
                Env
              </label>
              <select id="env" value={env} onChange={(e) => setEnv(e.target.value)} className="cursor-pointer rounded bg-transparent text-sm font-semibold focus:outline-none dark:bg-gray-800">
                <option value="staging">STAGING</option>
                <option value="prod">PROD</option>
              </select>
              <div className="h-6 w-px bg-gray-300 dark:bg-gray-600" aria-hidden />
              <input
                ref={input}
                type="text"
                role="combobox"
                aria-label="Command"
                aria-expanded={showList}
                aria-controls={listId}
                aria-autocomplete="list"
                aria-activedescendant={showList && highlight >= 0 ? `${listId}-${highlight}` : undefined}
                value={command}
                disabled={busy}
                autoComplete="off"
                onChange={(e) => {
                  setCommand(e.target.value)
                  setOpen(true)
                  setHighlight(-1)
                }}
                onFocus={() => setOpen(true)}
                onBlur={() => setOpen(false)}
                onKeyDown={onKeyDown}
                placeholder="Type a command… e.g. deploy llama-3.1 8B for chatbot-x with budget $20/hour"
                className="min-w-0 flex-1 bg-transparent text-sm outline-none placeholder:text-gray-400 focus-visible:ring-0 focus-visible:ring-offset-0"
              />
              {command && !busy && (
                <button
                  type="button"
                  aria-label="Clear command"
                  onClick={() => {
                    setCommand('')
                    setOpen(true)
                    input.current?.focus()
                  }}
                  className="text-gray-400 hover:text-gray-700 dark:hover:text-gray-200"
                >
                  <XCircle className="h-4 w-4" aria-hidden />
                </button>
              )}
            </div>
          </div>
          <button
            type="submit"
            disabled={!command.trim() || busy}
            className="flex items-center gap-2 rounded-lg bg-blue-600 px-5 py-2.5 text-sm font-medium text-white hover:bg-blue-700 disabled:cursor-not-allowed disabled:bg-gray-300 dark:disabled:bg-gray-700"
          >
            {busy ? <Loader2 className="h-4 w-4 animate-spin" aria-hidden /> : <Send className="h-4 w-4" aria-hidden />}
            {busy ? 'Processing…' : 'Send'}
          </button>
        </form>
      </div>
    </footer>
  )
}

function OutcomeBox({ outcome, onDismiss }: { outcome: Outcome; onDismiss: () => void }) {
  const dismiss = (
    <button type="button" onClick={onDismiss} aria-label="Dismiss result" className="ml-auto self-start rounded p-0.5 opacity-60 hover:opacity-100">
      <XCircle className="h-4 w-4" aria-hidden />
    </button>
  )
  if (outcome.kind === 'error') {
    const { error } = outcome
    const network = error.network
    const text = network
      ? 'The gateway could not be reached, so nothing was sent. Check that AgentOps is running (agentops up) and try again.'
      : error.status === 401
        ? `Your API key was not accepted: ${error.message}`
        : error.status === 403
          ? `Not allowed: ${error.message}`
          : error.status === 429
            ? `Slow down: ${error.message}`
            : error.status >= 500
              ? `The system could not take the command right now: ${error.message}`
              : error.message
    return (
      <div role="alert" data-testid="command-error" className="mb-3 flex gap-2 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">
        {network ? <WifiOff className="h-4 w-4 shrink-0" aria-hidden /> : <XCircle className="h-4 w-4 shrink-0" aria-hidden />}
        <div>
          <p className="font-medium">{network ? 'Network error' : `Request refused (${error.status})`}</p>
          <p>{text}</p>
          {error.errors.length > 1 && (
            <ul className="mt-1 list-disc pl-5">{error.errors.map((m) => <li key={m}>{m}</li>)}</ul>
          )}
        </div>
        {dismiss}
      </div>
    )
  }
  const r = outcome.response
  if (r.status === 'validation_failed') {
    const errors = r.validation_errors.length ? r.validation_errors : [r.message]
    return (
      <div role="alert" data-testid="command-validation" className="mb-3 flex gap-2 rounded-lg border border-yellow-300 bg-yellow-50 p-3 text-sm text-yellow-900 dark:border-yellow-700 dark:bg-yellow-950 dark:text-yellow-100">
        <AlertTriangle className="h-4 w-4 shrink-0" aria-hidden />
        <div>
          <p className="font-medium">The plan did not pass validation; nothing was deployed.</p>
          <ul className="mt-1 list-disc pl-5">{errors.map((m) => <li key={m}>{m}</li>)}</ul>
        </div>
        {dismiss}
      </div>
    )
  }
  if (r.status === 'accepted') {
    return (
      <div role="status" data-testid="command-accepted" className="mb-3 flex gap-2 rounded-lg border border-blue-200 bg-blue-50 p-3 text-sm text-blue-900 dark:border-blue-800 dark:bg-blue-950 dark:text-blue-100">
        <Info className="h-4 w-4 shrink-0" aria-hidden />
        <p>{r.message}</p>
        {dismiss}
      </div>
    )
  }
  const endpoint = r.result?.artifact?.endpoint_name
  return (
    <div role="status" data-testid="command-success" className="mb-3 flex gap-2 rounded-lg border border-green-200 bg-green-50 p-3 text-sm text-green-900 dark:border-green-800 dark:bg-green-950 dark:text-green-100">
      <CheckCircle2 className="h-4 w-4 shrink-0" aria-hidden />
      <div>
        <p className="font-medium">Command processed.</p>
        {endpoint && (
          <p>
            Endpoint: <span className="font-mono" data-testid="command-endpoint">{endpoint}</span>
          </p>
        )}
        <p>
          Status: <span className="font-medium">{(r.result?.status ?? 'planning').replace('_', ' ').toUpperCase()}</span>
          {r.requires_approval && <span className="ml-2 font-medium">• Requires approval</span>}
        </p>
      </div>
      {dismiss}
    </div>
  )
}
