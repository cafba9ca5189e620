-- The microservices mode's two databases on the one MariaDB of deploy/compose/microservices.yaml: the auth
-- service's and the users service's, each migrated by its own one-shot. The mariadb image runs this file once,
-- as root, on an empty data directory (/docker-entrypoint-initdb.d), after it has created MARIADB_USER.
CREATE DATABASE IF NOT EXISTS arcana_auth CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS arcana_users CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT ALL PRIVILEGES ON arcana_auth.* TO 'arcana'@'%';
GRANT ALL PRIVILEGES ON arcana_users.* TO 'arcana'@'%';
