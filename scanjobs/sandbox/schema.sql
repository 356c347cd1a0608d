-- The sandbox's own copy of the platform tables (docs/platform.md), typed as Django would create them.
-- Deliberately independent of scanjobs/platform/, so a mismatch shows up as a failing test.

CREATE TABLE master_data_implementation_store (
    id bigserial PRIMARY KEY,
    name varchar(255) NOT NULL,
    custom_id varchar(64) NULL,  -- the retailer's store number (the scan detail's store.custom_id)
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE master_data_implementation_category (
    id bigserial PRIMARY KEY,
    name varchar(255) NOT NULL
);

CREATE TABLE master_data_implementation_fileupload (
    id bigserial PRIMARY KEY,
    file varchar(500) NOT NULL,
    original_filename varchar(255) NOT NULL,
    input_type varchar(20) NOT NULL,
    content_type varchar(100) NOT NULL,
    size bigint NOT NULL,
    checksum varchar(64) NOT NULL,
    store_id bigint NULL REFERENCES master_data_implementation_store (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE planograms_implementation_planogram (
    id bigserial PRIMARY KEY,
    name varchar(255) NOT NULL,
    category_id bigint NULL REFERENCES master_data_implementation_category (id)
);

CREATE TABLE planograms_implementation_planogramstore (
    id bigserial PRIMARY KEY,
    planogram_id bigint NOT NULL REFERENCES planograms_implementation_planogram (id),
    store_id bigint NOT NULL REFERENCES master_data_implementation_store (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE planograms_implementation_planogramsection (
    id bigserial PRIMARY KEY,
    planogram_id bigint NOT NULL REFERENCES planograms_implementation_planogram (id),
    name varchar(255) NOT NULL,
    position integer NOT NULL
);

CREATE TABLE planograms_implementation_planogramsectionproduct (
    id bigserial PRIMARY KEY,
    section_id bigint NOT NULL REFERENCES planograms_implementation_planogramsection (id),
    upc varchar(32) NOT NULL,
    action varchar(64) NULL,
    merch_method varchar(64) NULL,
    facings integer NOT NULL
);

CREATE TABLE realograms_implementation_scan (
    id bigserial PRIMARY KEY,
    store_id bigint NOT NULL REFERENCES master_data_implementation_store (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    status varchar(32) NOT NULL,
    has_report boolean NOT NULL DEFAULT false,
    selected_category_id bigint NULL REFERENCES master_data_implementation_category (id),
    active_realogram_id bigint NULL,
    provided_values jsonb NOT NULL DEFAULT '{}'::jsonb,
    processing_start_time timestamptz NULL,
    processing_finish_time timestamptz NULL,
    last_requeue timestamptz NULL
);

CREATE TABLE realograms_implementation_scanfile (
    id bigserial PRIMARY KEY,
    scan_id bigint NOT NULL REFERENCES realograms_implementation_scan (id),
    file_id bigint NOT NULL REFERENCES master_data_implementation_fileupload (id),
    file_type varchar(20) NOT NULL
);
CREATE INDEX scanfile_scan_idx ON realograms_implementation_scanfile (scan_id);

CREATE TABLE realograms_implementation_realogram (
    id bigserial PRIMARY KEY,
    scan_id bigint NOT NULL REFERENCES realograms_implementation_scan (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE realograms_implementation_realogrambay (
    id bigserial PRIMARY KEY,
    realogram_id bigint NOT NULL REFERENCES realograms_implementation_realogram (id),
    number integer NOT NULL
);

CREATE TABLE planograms_compliance_planogramcompliancereport (
    id bigserial PRIMARY KEY,
    realogram_id bigint NOT NULL REFERENCES realograms_implementation_realogram (id),
    store_planogram_id bigint NULL REFERENCES planograms_implementation_planogramstore (id),
    planogram_id bigint NULL REFERENCES planograms_implementation_planogram (id),
    section_id bigint NULL REFERENCES planograms_implementation_planogramsection (id),
    section_name varchar(255) NULL,
    aisle_name varchar(64) NULL,
    compliance_rate double precision NULL,
    facing_compliance_rate double precision NULL,
    sequence_compliance_rate double precision NULL,
    initial_pre_compliance double precision NULL,
    compliance_rates jsonb NULL,
    -- a date on the platform: the legacy join compares it with the daily compliance row's date
    scan_created_date date NOT NULL,
    -- a recalculated scan keeps its older reports, no longer active
    is_last_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE planograms_compliance_storeplanogramcompliance (
    id bigserial PRIMARY KEY,
    store_planogram_id bigint NOT NULL REFERENCES planograms_implementation_planogramstore (id),
    date date NOT NULL,
    pre_compliance double precision NULL,
    post_compliance double precision NULL,
    pre_osa double precision NULL,
    post_osa double precision NULL,
    facing_compliance double precision NULL,
    sequence_pre_compliance double precision NULL,
    sequence_post_compliance double precision NULL,
    initial_pre_compliance double precision NULL,
    UNIQUE (store_planogram_id, date)
);

CREATE TABLE planograms_compliance_majorityv2log (
    id bigserial PRIMARY KEY,
    store_planogram_id bigint NULL REFERENCES planograms_implementation_planogramstore (id),
    scan_created_date timestamptz NOT NULL,
    data jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Idempotency of creates and uploads: REB-CLIENT-REQUEST-UID, per endpoint ('create' or
-- 'upload'), -> the scan or file its first request made (NULL while that request runs), and when
-- it was answered (from then on the uid may be forgotten: RuntimeConfig.forget_uids_after).
CREATE TABLE sandbox_client_request (
    endpoint varchar(20) NOT NULL,
    uid varchar(128) NOT NULL,
    made_id bigint NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz NULL,
    PRIMARY KEY (endpoint, uid)
);

-- Django indexes every ForeignKey column; so does the sandbox, or a lookup by realogram or
-- store planogram would read the whole table once per scan (the 100k bench's processing
-- status took over 120 s without them).
CREATE INDEX fileupload_store_idx ON master_data_implementation_fileupload (store_id);
CREATE INDEX planogram_category_idx ON planograms_implementation_planogram (category_id);
CREATE INDEX planogramstore_planogram_idx ON planograms_implementation_planogramstore (planogram_id);
CREATE INDEX planogramstore_store_idx ON planograms_implementation_planogramstore (store_id);
CREATE INDEX section_planogram_idx ON planograms_implementation_planogramsection (planogram_id);
CREATE INDEX sectionproduct_section_idx ON planograms_implementation_planogramsectionproduct (section_id);
CREATE INDEX scan_store_idx ON realograms_implementation_scan (store_id);
CREATE INDEX scan_category_idx ON realograms_implementation_scan (selected_category_id);
CREATE INDEX scanfile_file_idx ON realograms_implementation_scanfile (file_id);
CREATE INDEX realogram_scan_idx ON realograms_implementation_realogram (scan_id);
CREATE INDEX bay_realogram_idx ON realograms_implementation_realogrambay (realogram_id);
CREATE INDEX report_realogram_idx ON planograms_compliance_planogramcompliancereport (realogram_id);
CREATE INDEX report_store_planogram_idx ON planograms_compliance_planogramcompliancereport (store_planogram_id);
CREATE INDEX report_planogram_idx ON planograms_compliance_planogramcompliancereport (planogram_id);
CREATE INDEX report_section_idx ON planograms_compliance_planogramcompliancereport (section_id);
CREATE INDEX spc_store_planogram_idx ON planograms_compliance_storeplanogramcompliance (store_planogram_id);
CREATE INDEX mlog_store_planogram_idx ON planograms_compliance_majorityv2log (store_planogram_id);
