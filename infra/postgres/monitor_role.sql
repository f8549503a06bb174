-- A login role for the Streamlit monitor that can only read (the flows write as the owner).
-- psql variables: role, password, owner (the role that runs the migrations), db.
-- Run once at database initialisation (docker-compose: compose-init/10-monitor-role.sh).
CREATE ROLE :"role" LOGIN PASSWORD :'password';
ALTER ROLE :"role" SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"db" TO :"role";
GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"role";
-- tables the migrations create later (and TimescaleDB chunks inherit their hypertable's grants)
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"role";
