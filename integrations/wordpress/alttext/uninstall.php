<?php
/**
 * Removes the plugin's options and its scheduled events. Attachment meta (review state) is kept:
 * it documents where alt text came from.
 *
 * @package Alttext
 */

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

delete_option( 'alttext_settings' );
delete_option( 'alttext_last_error' );
delete_option( 'alttext_backfill_cursor' );
wp_clear_scheduled_hook( 'alttext_retry_pending' );
wp_clear_scheduled_hook( 'alttext_backfill_continue' );
