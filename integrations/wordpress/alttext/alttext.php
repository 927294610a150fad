<?php
/**
 * Plugin Name:       Alt Text (alttext)
 * Plugin URI:        https://github.com/alttext/alttext
 * Description:       Drafts alt text for uploaded images with a self-hosted alttext service, flags drafts that need review and backfills the media library.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * Author:            alttext contributors
 * License:           Apache-2.0
 * License URI:       https://www.apache.org/licenses/LICENSE-2.0
 * Text Domain:       alttext
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'ALTTEXT_VERSION', '0.1.0' );
define( 'ALTTEXT_PLUGIN_FILE', __FILE__ );

require_once __DIR__ . '/includes/class-alttext-client.php';
require_once __DIR__ . '/includes/class-alttext-settings.php';
require_once __DIR__ . '/includes/class-alttext-attachments.php';
require_once __DIR__ . '/includes/class-alttext-backfill.php';
require_once __DIR__ . '/includes/class-alttext-admin.php';

Alttext_Settings::init();
Alttext_Attachments::init();
Alttext_Backfill::init();
Alttext_Admin::init();

if ( defined( 'WP_CLI' ) && WP_CLI ) {
	require_once __DIR__ . '/includes/class-alttext-cli-command.php';
	WP_CLI::add_command( 'alttext', 'Alttext_CLI_Command' );
}

register_deactivation_hook( __FILE__, array( 'Alttext_Attachments', 'unschedule' ) );
