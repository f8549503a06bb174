-- Dead letters belong to the run that wrote them (issue 12). Late-tick letters are keyed by
-- (late-<interval>:<token>, -1, event time): two runs over the same instruments wrote the same
-- key and the later overwrote the earlier. The run joins the key; rows written before this
-- migration keep run_id '' (no run can be told for them). The same in TimescaleDB and plain
-- mode: dead_letters is an ordinary table in both.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS run_id text NOT NULL DEFAULT '';
ALTER TABLE dead_letters DROP CONSTRAINT IF EXISTS dead_letters_pkey;
ALTER TABLE dead_letters
    ADD PRIMARY KEY (run_id, source_topic, source_partition, source_offset);
