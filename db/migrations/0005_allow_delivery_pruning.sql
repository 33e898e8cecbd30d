-- Processed webhook deliveries hold leads' messages in raw form; the worker deletes them after a retention period.
grant delete on whatsapp.webhook_deliveries to app_user;
create index webhook_deliveries_processed_idx on whatsapp.webhook_deliveries (processed_at) where status = 'processed';
