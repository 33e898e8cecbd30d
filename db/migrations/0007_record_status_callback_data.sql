-- Meta echoes a send's biz_opaque_callback_data in its statuses: kept and indexed, it proves a send was accepted.
alter table whatsapp.message_statuses add column biz_opaque_callback_data text;
create index message_statuses_callback_idx on whatsapp.message_statuses (tenant_id, biz_opaque_callback_data)
  where biz_opaque_callback_data is not null;
