-- Analytics events say which part of the product recorded them (whatsapp, web_form, bot, api), now that every producer goes through domains/analytics.
alter table analytics.events add column source text;
