<?php
/**
 * Settings page (Settings > Alt text) built on the Settings API.
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Options live in one array option, `alttext_settings`. The API key is write-only: the form never
 * prints it back, and submitting the field empty keeps the stored key.
 */
class Alttext_Settings {

	const OPTION     = 'alttext_settings';
	const LAST_ERROR = 'alttext_last_error';
	const PAGE       = 'alttext';

	/**
	 * Defaults for every setting.
	 *
	 * @return array
	 */
	public static function defaults() {
		return array(
			'service_url' => 'http://127.0.0.1:8000',
			'api_key'     => '',
			'max_chars'   => 125,
			'lang'        => '',
			'mode'        => 'fill',
			'timeout'     => 15,
		);
	}

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( 'admin_init', array( __CLASS__, 'register' ) );
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
	}

	/**
	 * One setting, with its default.
	 *
	 * @param string $name Setting name.
	 * @return mixed
	 */
	public static function get( $name ) {
		$all = wp_parse_args( (array) get_option( self::OPTION, array() ), self::defaults() );
		if ( 'lang' === $name && '' === $all['lang'] ) {
			return str_replace( '_', '-', get_locale() );
		}
		return isset( $all[ $name ] ) ? $all[ $name ] : null;
	}

	/**
	 * Records the last service error, shown on the settings page until a call succeeds.
	 *
	 * @param WP_Error $error         The error.
	 * @param int      $attachment_id The attachment it concerned.
	 */
	public static function record_error( WP_Error $error, $attachment_id ) {
		update_option(
			self::LAST_ERROR,
			array(
				'code'          => $error->get_error_code(),
				'message'       => $error->get_error_message(),
				'attachment_id' => (int) $attachment_id,
				'time'          => time(),
			),
			false
		);
	}

	/**
	 * Clears the last error after a successful call.
	 */
	public static function clear_error() {
		delete_option( self::LAST_ERROR );
	}

	/**
	 * Registers the option, its sanitiser and the fields.
	 */
	public static function register() {
		register_setting(
			self::PAGE,
			self::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( __CLASS__, 'sanitize' ),
				'default'           => self::defaults(),
			)
		);
		add_settings_section( 'alttext_service', __( 'Service', 'alttext' ), '__return_false', self::PAGE );
		add_settings_section( 'alttext_behaviour', __( 'Behaviour', 'alttext' ), '__return_false', self::PAGE );
		$fields = array(
			'service_url' => array( __( 'Service URL', 'alttext' ), 'alttext_service' ),
			'api_key'     => array( __( 'API key', 'alttext' ), 'alttext_service' ),
			'timeout'     => array( __( 'Timeout (seconds)', 'alttext' ), 'alttext_service' ),
			'mode'        => array( __( 'On upload', 'alttext' ), 'alttext_behaviour' ),
			'max_chars'   => array( __( 'Maximum length', 'alttext' ), 'alttext_behaviour' ),
			'lang'        => array( __( 'Language', 'alttext' ), 'alttext_behaviour' ),
		);
		foreach ( $fields as $name => $field ) {
			add_settings_field(
				'alttext_' . $name,
				$field[0],
				array( __CLASS__, 'field' ),
				self::PAGE,
				$field[1],
				array(
					'name'      => $name,
					'label_for' => 'alttext_' . $name,
				)
			);
		}
	}

	/**
	 * Cleans submitted settings; keeps the stored key when the key field is left empty.
	 *
	 * @param mixed $input Submitted values.
	 * @return array
	 */
	public static function sanitize( $input ) {
		$old   = wp_parse_args( (array) get_option( self::OPTION, array() ), self::defaults() );
		$input = is_array( $input ) ? $input : array();
		$out   = $old;
		if ( isset( $input['service_url'] ) ) {
			$url = esc_url_raw( trim( (string) $input['service_url'] ), array( 'http', 'https' ) );
			if ( '' === $url ) {
				add_settings_error( self::OPTION, 'alttext_service_url', __( 'The service URL must be an http or https address.', 'alttext' ) );
			} else {
				$out['service_url'] = untrailingslashit( $url );
			}
		}
		if ( ! empty( $input['clear_api_key'] ) ) {
			$out['api_key'] = '';
		} elseif ( isset( $input['api_key'] ) && '' !== trim( (string) $input['api_key'] ) ) {
			$out['api_key'] = sanitize_text_field( (string) $input['api_key'] );
		}
		if ( isset( $input['max_chars'] ) ) {
			$out['max_chars'] = min( 1000, max( 20, absint( $input['max_chars'] ) ) );
		}
		if ( isset( $input['timeout'] ) ) {
			$out['timeout'] = min( 120, max( 1, absint( $input['timeout'] ) ) );
		}
		if ( isset( $input['lang'] ) ) {
			$lang        = trim( (string) $input['lang'] );
			$out['lang'] = preg_match( '/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/', $lang ) ? $lang : '';
		}
		if ( isset( $input['mode'] ) ) {
			$out['mode'] = 'propose' === $input['mode'] ? 'propose' : 'fill';
		}
		return $out;
	}

	/**
	 * Prints one field.
	 *
	 * @param array $args Field arguments.
	 */
	public static function field( $args ) {
		$name  = $args['name'];
		$id    = 'alttext_' . $name;
		$field = self::OPTION . '[' . $name . ']';
		$all   = wp_parse_args( (array) get_option( self::OPTION, array() ), self::defaults() );
		switch ( $name ) {
			case 'api_key':
				$has_key = '' !== $all['api_key'];
				printf(
					'<input type="password" class="regular-text" id="%1$s" name="%2$s" value="" autocomplete="new-password" aria-describedby="%1$s_help" />',
					esc_attr( $id ),
					esc_attr( $field )
				);
				echo '<p class="description" id="' . esc_attr( $id ) . '_help">' . ( $has_key
					? esc_html__( 'A key is saved. It is never shown; leave the field empty to keep it.', 'alttext' )
					: esc_html__( 'No key saved. Needed when the service requires keys (alttext keys create NAME).', 'alttext' ) ) . '</p>';
				if ( $has_key ) {
					printf(
						'<p><label><input type="checkbox" name="%s" value="1" /> %s</label></p>',
						esc_attr( self::OPTION . '[clear_api_key]' ),
						esc_html__( 'Remove the saved key', 'alttext' )
					);
				}
				break;
			case 'mode':
				echo '<fieldset id="' . esc_attr( $id ) . '"><legend class="screen-reader-text">' . esc_html__( 'On upload', 'alttext' ) . '</legend>';
				$choices = array(
					'fill'    => __( 'Fill empty alt text automatically (marked as AI-generated, flagged when it needs review)', 'alttext' ),
					'propose' => __( 'Only propose: keep the alt field empty and show the draft for an editor to approve', 'alttext' ),
				);
				foreach ( $choices as $value => $label ) {
					printf(
						'<label><input type="radio" name="%1$s" value="%2$s" %3$s /> %4$s</label><br />',
						esc_attr( $field ),
						esc_attr( $value ),
						checked( $all['mode'], $value, false ),
						esc_html( $label )
					);
				}
				echo '</fieldset>';
				break;
			case 'max_chars':
			case 'timeout':
				printf(
					'<input type="number" class="small-text" id="%1$s" name="%2$s" value="%3$s" min="%4$d" max="%5$d" />',
					esc_attr( $id ),
					esc_attr( $field ),
					esc_attr( $all[ $name ] ),
					'max_chars' === $name ? 20 : 1,
					'max_chars' === $name ? 1000 : 120
				);
				break;
			case 'lang':
				printf(
					'<input type="text" class="regular-text" id="%1$s" name="%2$s" value="%3$s" placeholder="%4$s" aria-describedby="%1$s_help" /><p class="description" id="%1$s_help">%5$s</p>',
					esc_attr( $id ),
					esc_attr( $field ),
					esc_attr( $all['lang'] ),
					esc_attr( str_replace( '_', '-', get_locale() ) ),
					esc_html__( 'BCP 47 language tag; empty means the site language.', 'alttext' )
				);
				break;
			default:
				printf(
					'<input type="url" class="regular-text" id="%1$s" name="%2$s" value="%3$s" />',
					esc_attr( $id ),
					esc_attr( $field ),
					esc_attr( $all[ $name ] )
				);
		}
	}

	/**
	 * Adds Settings > Alt text.
	 */
	public static function menu() {
		add_options_page( __( 'Alt text', 'alttext' ), __( 'Alt text', 'alttext' ), 'manage_options', self::PAGE, array( __CLASS__, 'render' ) );
	}

	/**
	 * Prints the settings page, with the last service error and the retry queue.
	 */
	public static function render() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage these settings.', 'alttext' ), 403 );
		}
		$error   = get_option( self::LAST_ERROR );
		$pending = Alttext_Attachments::pending_count();
		$next    = wp_next_scheduled( Alttext_Attachments::CRON_HOOK );
		echo '<div class="wrap"><h1>' . esc_html__( 'Alt text', 'alttext' ) . '</h1>';
		settings_errors( self::OPTION );
		echo '<h2>' . esc_html__( 'Status', 'alttext' ) . '</h2>';
		if ( is_array( $error ) ) {
			echo '<div class="notice notice-error inline" id="alttext-last-error"><p><strong>' . esc_html__( 'Last service error:', 'alttext' ) . '</strong> '
				. esc_html( $error['message'] ) . ' <code>' . esc_html( $error['code'] ) . '</code> '
				/* translators: 1: attachment ID, 2: date and time. */
				. esc_html( sprintf( __( '(attachment %1$d, %2$s)', 'alttext' ), $error['attachment_id'], wp_date( 'Y-m-d H:i:s', $error['time'] ) ) ) . '</p></div>';
		} else {
			echo '<p id="alttext-last-error">' . esc_html__( 'No service errors since the last successful call.', 'alttext' ) . '</p>';
		}
		/* translators: %d: number of images. */
		echo '<p>' . esc_html( sprintf( _n( '%d image is waiting for a retry.', '%d images are waiting for a retry.', $pending, 'alttext' ), $pending ) );
		if ( $next ) {
			/* translators: %s: date and time. */
			echo ' ' . esc_html( sprintf( __( 'Next retry: %s.', 'alttext' ), wp_date( 'Y-m-d H:i:s', $next ) ) );
		}
		echo '</p><form action="options.php" method="post">';
		settings_fields( self::PAGE );
		do_settings_sections( self::PAGE );
		submit_button();
		echo '</form></div>';
	}
}
