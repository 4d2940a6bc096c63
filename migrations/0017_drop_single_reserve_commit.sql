-- One implementation of reserving and charging: the send steps' batch functions
-- (send_begin_many, 0015; send_finish_many, 0014), a single message being a batch of one.
-- The one-message functions of 0008 have had no caller in the service since the send workers
-- moved to the batch functions (0014): workers of the previous release do not call them either,
-- so dropping them is safe during a rolling deploy. No SQL function calls them.
-- ledger_release, ledger_post and ledger_outcome (0008) stay: releasing is still one hold at a
-- time, and the type ledger_hold_outcome with them.
DROP FUNCTION ledger_reserve(uuid, uuid, uuid, bigint, double precision);
DROP FUNCTION ledger_commit(uuid, bigint);
