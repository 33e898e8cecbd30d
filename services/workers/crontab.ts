/**
 * graphile-worker crontab. One line per recurring task, each with an id (`id=`) so renames keep their history,
 * and a comment saying why it runs when it does.
 */
export const crontab: string[] = [
  // Every minute, the last resort: jobs of a worker that never beat (heartbeats hand back the others within
  // WORKER_HEARTBEAT_TIMEOUT_MS) go back to the queue within ~11 minutes instead of graphile's 4 hours.
  '* * * * * ops__unlock_stale_jobs ?id=unlock_stale_jobs&max=1',
  // Hourly at :17 (off the hour, when other cron jobs pile up): raw deliveries past WEBHOOK_RETENTION_DAYS.
  '17 * * * * whatsapp__prune_deliveries ?id=prune_deliveries&max=1',
  // Nightly at 03:23 UTC (quiet hours, off the hour): each tenant's retention periods (analytics events, messages,
  // interactions, expired exports), in bounded batches within PRIVACY_RETENTION_BUDGET_SECONDS.
  '23 3 * * * privacy__apply_retention ?id=apply_retention&max=1',
  // Every minute: PostHog forwarding drains the outbox (a no-op without POSTHOG_API_KEY). Forwarding is not
  // realtime; a minute keeps batches large, and one run at a time (max=1) keeps the lanes bounded.
  '* * * * * analytics__forward_posthog ?id=forward_posthog&max=1',
  // Every 10 minutes: PostHog person deletions of erased people that failed or waited for their backoff (each erasure
  // also enqueues a run at once). A no-op when nothing is due.
  '*/10 * * * * analytics__delete_posthog_persons ?id=delete_posthog_persons&max=1',
  // Hourly at :07: analytics.events' day partitions a week ahead (a missed night costs nothing), and rows that
  // reached the default partition moved into their day's own within the hour.
  '7 * * * * analytics__create_partitions ?id=create_partitions&max=1',
  // Every minute (cross-tenant): closed dirty 5-minute buckets rebuilt from raw, so an event is in the rollups within
  // one bucket plus one minute (≤ 6 min). max=1: a run that overlaps the next would only skip busy tenants anyway.
  '* * * * * analytics__roll_up ?id=roll_up&max=1',
  // Every minute, after the 5-minute rollups it sums: the query API's day level, so the dashboard's 30-day queries
  // read days instead of buckets. A day not rebuilt yet is read from its buckets meanwhile (slower, still exact).
  '* * * * * analytics__roll_up_days ?id=roll_up_days&max=1',
  // Every minute (cross-tenant): the persons assignments, exposures and goal events queued recomputed (a run that found
  // some runs again 2 s later, so under steady assigning a read recomputes seconds of them), experiment results'
  // deltas folded into their totals (results are exact either way), and experiments whose goals changed rebuilt.
  '* * * * * experiments__maintain_results ?id=maintain_experiment_results&max=1',
  // Every minute, the safety net of onboarding inactivity: the task schedules itself for the next due session (at most
  // 5 s ahead), so this only restarts the chain should it break (a run that failed waits for graphile's backoff).
  // High priority, like the chain: the jobs a run queues must not delay the next.
  '* * * * * onboarding__check_inactivity ?id=onboarding_inactivity&max=1&priority=-10',
  // Hourly at :29 (off the hour; also once 5 minutes after a worker starts): empty queue rows of the old one queue per
  // recipient sender, per conversation (bot) and per broadcast, which slow every job fetch. After the first sweep each
  // run scans only a few hundred queue rows;
  // hourly, the queues of old jobs that end later (retries back off for days) go within the hour.
  '29 * * * * whatsapp__gc_send_queues ?id=gc_send_queues&max=1',
  // Hourly at :41 (off the hour): campaign drafts 7 days past their last save, deleted in batches (cross-tenant).
  // Reads already ignore an expired draft, so an hour's lag costs only disk; batches keep each statement short.
  '41 * * * * campaigns__expire_drafts ?id=expire_campaign_drafts&max=1',
  // Hourly at :53: AI analysis cache entries past AI_CACHE_TTL (patterns that never came again) and dead jobs' claims,
  // in batches (cross-tenant). A hit never reads an expired entry, so the lag costs only disk.
  '53 * * * * assessments__prune_analysis_cache ?id=prune_analysis_cache&max=1',
  // Hourly at :37 (cross-tenant, off the hour): the address, browser and referrer of partner-link clicks that name no
  // lead, past the tenant's linkClickDetailsDays (default 30); the rows stay for the counts. Hourly keeps batches small.
  '37 * * * * assessments__prune_click_details ?id=prune_click_details&max=1',
  // Every 5 minutes (cross-tenant): assessment sessions idle for ASSESSMENTS_ABANDON_AFTER (default a day) marked
  // abandoned in batches. Five minutes is nothing next to a day of idleness, and keeps each run's batch small.
  '*/5 * * * * assessments__abandon_idle_sessions ?id=assessments_abandon_idle&max=1',
]
