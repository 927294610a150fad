<?php
/**
 * Drives the test WordPress from the PHP CLI (WP-CLI is not in the registries this project can reach).
 *
 * Usage: WP_ROOT=/tmp/site/wordpress php wp_run.php OP [ARGS...]
 *   activate SERVICE_URL [API_KEY]     activate the plugin, save its settings, print an application password
 *   settings JSON                      merge JSON into the plugin's settings (through its sanitiser)
 *   meta ID                            print the attachment's alt and alttext meta as JSON
 *   make-due                           move every queued retry (and the cron event) to now, as if time passed
 *   cron                               nothing here: run wp-cron.php itself for due events
 *   sideload FILE NAME [ALT]           add an image as if it predates the plugin (no upload hook)
 *   approve ID                         what the "Approve" link does, as the admin
 *   set-alt ID TEXT                    an editor types alt text (update_post_meta, as the media modal does)
 *   wp alttext backfill [--flags]      WP-CLI's dispatch: define WP_CLI, let the plugin register its command
 *                                      with WP_CLI::add_command, then call the registered class's method
 *
 * @package Alttext
 */

$op   = $argv[1] ?? '';
$root = getenv( 'WP_ROOT' );

if ( 'wp' === $op ) {
	// The small part of WP-CLI that the plugin uses: registration and output.
	define( 'WP_CLI', true );
	class WP_CLI {
		public static $commands = array();
		public static function add_command( $name, $callable ) {
			self::$commands[ $name ] = $callable;
		}
		public static function log( $message ) {
			fwrite( STDOUT, $message . "\n" );
		}
		public static function success( $message ) {
			fwrite( STDOUT, 'Success: ' . $message . "\n" );
		}
		public static function warning( $message ) {
			fwrite( STDERR, 'Warning: ' . $message . "\n" );
		}
		public static function error( $message ) {
			fwrite( STDERR, 'Error: ' . $message . "\n" );
			exit( 1 );
		}
	}
}

$_SERVER['HTTP_HOST'] = getenv( 'WP_HOST' );
require $root . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
wp_set_current_user( 1 );

function alttext_test_meta( $id ) {
	$out = array( 'alt' => get_post_meta( $id, '_wp_attachment_image_alt', true ) );
	foreach ( get_post_meta( $id ) as $key => $values ) {
		if ( 0 === strpos( $key, '_alttext_' ) ) {
			$out[ substr( $key, 9 ) ] = maybe_unserialize( $values[0] );
		}
	}
	return $out;
}

switch ( $op ) {
	case 'activate':
		$result = activate_plugin( 'alttext/alttext.php' );
		if ( is_wp_error( $result ) ) {
			fwrite( STDERR, $result->get_error_message() . "\n" );
			exit( 1 );
		}
		update_option( 'alttext_settings', Alttext_Settings::sanitize( array( 'service_url' => $argv[2], 'api_key' => $argv[3] ?? '', 'lang' => 'en-GB' ) ) );
		list( $password ) = WP_Application_Passwords::create_new_application_password( 1, array( 'name' => 'tests' ) );
		echo wp_json_encode( array( 'user' => 'admin', 'password' => $password, 'active' => is_plugin_active( 'alttext/alttext.php' ) ) );
		break;
	case 'settings':
		update_option( 'alttext_settings', Alttext_Settings::sanitize( json_decode( $argv[2], true ) ) );
		echo wp_json_encode( get_option( 'alttext_settings' ) );
		break;
	case 'meta':
		echo wp_json_encode( alttext_test_meta( (int) $argv[2] ) );
		break;
	case 'make-due':
		$ids = get_posts( array( 'post_type' => 'attachment', 'post_status' => 'inherit', 'fields' => 'ids', 'meta_key' => '_alttext_pending', 'posts_per_page' => -1 ) );
		foreach ( $ids as $id ) {
			update_post_meta( $id, '_alttext_pending', time() - 1 );
		}
		$next = wp_next_scheduled( Alttext_Attachments::CRON_HOOK );
		if ( $next ) {
			wp_unschedule_event( $next, Alttext_Attachments::CRON_HOOK );
		}
		wp_schedule_single_event( time() - 1, Alttext_Attachments::CRON_HOOK );
		echo wp_json_encode( array( 'due' => $ids, 'was_scheduled_at' => $next ) );
		break;
	case 'sideload':
		// An image that was in the library before the plugin: no upload hook, alt as given.
		require_once ABSPATH . 'wp-admin/includes/file.php';
		require_once ABSPATH . 'wp-admin/includes/media.php';
		require_once ABSPATH . 'wp-admin/includes/image.php';
		remove_action( 'add_attachment', array( 'Alttext_Attachments', 'on_upload' ) );
		$tmp = wp_tempnam();
		copy( $argv[2], $tmp );
		$id = media_handle_sideload( array( 'name' => $argv[3], 'tmp_name' => $tmp ), 0 );
		if ( is_wp_error( $id ) ) {
			fwrite( STDERR, $id->get_error_message() . "\n" );
			exit( 1 );
		}
		if ( isset( $argv[4] ) && '' !== $argv[4] ) {
			update_post_meta( $id, '_wp_attachment_image_alt', wp_slash( $argv[4] ) );
		}
		echo wp_json_encode( array( 'id' => $id ) );
		break;
	case 'approve':
		Alttext_Attachments::approve( (int) $argv[2] );
		echo wp_json_encode( alttext_test_meta( (int) $argv[2] ) );
		break;
	case 'set-alt':
		update_post_meta( (int) $argv[2], '_wp_attachment_image_alt', wp_slash( $argv[3] ) );
		echo wp_json_encode( alttext_test_meta( (int) $argv[2] ) );
		break;
	case 'wp':
		// wp alttext backfill --limit=2 --dry-run
		$command = WP_CLI::$commands[ $argv[2] ] ?? null;
		if ( ! $command ) {
			WP_CLI::error( "'{$argv[2]}' is not a registered wp command." );
		}
		$assoc = array();
		$args  = array();
		foreach ( array_slice( $argv, 4 ) as $arg ) {
			if ( preg_match( '/^--([^=]+)(?:=(.*))?$/', $arg, $m ) ) {
				$assoc[ $m[1] ] = isset( $m[2] ) ? $m[2] : true;
			} else {
				$args[] = $arg;
			}
		}
		$instance = new $command();
		$method   = str_replace( '-', '_', $argv[3] );
		$instance->$method( $args, $assoc );
		break;
	default:
		fwrite( STDERR, "unknown op {$op}\n" );
		exit( 2 );
}
