-- One person, one staff account: "a different person" is decided by the subject a staff member is
-- linked to, so two staff accounts on one subject would let one person approve twice. A
-- database that already holds such a pair refuses this migration until an administrator unlinks one.
CREATE UNIQUE INDEX staff_one_account_per_person ON staff (subject_id);
