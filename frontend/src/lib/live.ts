import { useEffect, useRef, useState } from 'react'
import { useQueryClient } from '@tanstack/react-query'
import { HistoryEventTypeValues } from './api-types'
import { keys } from './keys'

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
      void client.invalidateQueries({ queryKey: keys.deployments })
      void client.invalidateQueries({ queryKey: keys.metrics })
      void client.invalidateQueries({ queryKey: keys.approvals })
      for (const id of plans) void client.invalidateQueries({ queryKey: keys.plan(id) })
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
    // every event type the API can send, from the generated API types
    for (const type of HistoryEventTypeValues) source.addEventListener(type, onEvent as EventListener)
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
