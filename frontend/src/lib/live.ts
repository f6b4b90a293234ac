import { useEffect, useRef, useState } from 'react'
import { useQueryClient } from '@tanstack/react-query'

/** Subscribes to the gateway's Server-Sent Events (/api/events) and refreshes what an event
 * changes. Returns whether the stream is connected; callers poll when it is not. The browser
 * reconnects by itself with Last-Event-ID, so no event is missed across a blip. */
export function useLiveEvents(apiKey: string): boolean {
  const client = useQueryClient()
  const [connected, setConnected] = useState(false)
  const pending = useRef<Set<string>>(new Set())
  const timer = useRef<number | null>(null)

  useEffect(() => {
    if (typeof EventSource === 'undefined') return
    const source = new EventSource(`/api/events?api_key=${encodeURIComponent(apiKey)}`)
    const flush = () => {
      timer.current = null
      const plans = [...pending.current]
      pending.current.clear()
      void client.invalidateQueries({ queryKey: ['deployments'] })
      void client.invalidateQueries({ queryKey: ['metrics'] })
      void client.invalidateQueries({ queryKey: ['approvals'] })
      for (const id of plans) void client.invalidateQueries({ queryKey: ['plan', id] })
    }
    const onEvent = (message: MessageEvent<string>) => {
      try {
        const event = JSON.parse(message.data) as { plan_id?: string | null }
        if (event.plan_id) pending.current.add(event.plan_id)
      } catch {
        /* a malformed frame changes nothing */
      }
      // Coalesce bursts (one command makes several events) into one refresh.
      if (timer.current === null) timer.current = window.setTimeout(flush, 250)
    }
    const types = [
      'intent.received',
      'plan.proposed',
      'plan.failed',
      'plan.rejected',
      'approval.requested',
      'approval.decided',
      'deployment.requested',
      'deployment.action',
      'deployment.status',
    ]
    for (const type of types) source.addEventListener(type, onEvent as EventListener)
    source.onmessage = onEvent
    source.onopen = () => setConnected(true)
    source.onerror = () => setConnected(source.readyState === EventSource.OPEN)
    return () => {
      source.close()
      if (timer.current !== null) window.clearTimeout(timer.current)
      setConnected(false)
    }
  }, [apiKey, client])

  return connected
}
